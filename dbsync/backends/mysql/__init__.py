"""MySQL and MariaDB: every statement and information_schema query dbsync runs on them."""
