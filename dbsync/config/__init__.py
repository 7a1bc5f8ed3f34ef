"""The configuration core: settings, tables.json, errors, results, retry, names.

Pure: nothing here talks to a database (checked by tests/unit/test_layering.py).
"""
