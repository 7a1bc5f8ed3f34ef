"""The dbsync Celery worker fleet: ``celery -A workers.app worker``."""
