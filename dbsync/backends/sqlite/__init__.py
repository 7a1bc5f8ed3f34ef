"""SQLite, the demo's database: its dialect and the demo's source data."""
