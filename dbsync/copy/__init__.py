"""Chunked full copies of large tables, shared by threads or by the fleet."""
