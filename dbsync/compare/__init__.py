"""Comparing source and target: verify (checksums), key differences, delete propagation."""
