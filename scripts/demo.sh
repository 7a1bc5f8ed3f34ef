#!/usr/bin/env bash
# Quick start 1: the self-contained demo (embedded SQLite source and target, no services).
source "$(dirname "$0")/_env.sh"
ensure_venv
exec "$VENV/bin/dbsync" --log-level WARNING demo "$@"
