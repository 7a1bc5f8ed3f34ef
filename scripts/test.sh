#!/usr/bin/env bash
# Quick start 2: the test suite (unit + integration against MariaDB and Redis on localhost),
# with the coverage gate on dbsync/ (85% of lines).
source "$(dirname "$0")/_env.sh"
ensure_venv
ensure_services
cd "$ROOT"
"$VENV/bin/ruff" check dbsync workers beat tests
exec "$VENV/bin/pytest" --cov --cov-report=term --cov-fail-under=85 "$@"
