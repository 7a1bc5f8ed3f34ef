"""Operating dbsync: health policy and facts, the HTTP server, metrics, logs, status view,
check-config."""
