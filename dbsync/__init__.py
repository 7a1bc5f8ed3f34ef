"""dbsync: lossless, type-faithful MySQL/MariaDB table sync built on dlt."""

__version__ = "0.1.0"
