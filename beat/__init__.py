"""The dbsync scheduler: ``celery -A beat.app beat`` enqueues one sync per table per interval."""
