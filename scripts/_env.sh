# Shared by scripts/*.sh: a project virtualenv with pinned dependencies, and the services.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found; dbsync needs Python 3.11+" >&2; exit 1
  fi
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: dbsync needs Python 3.11+, found $("$PYTHON" --version)" >&2; exit 1
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.dbsync-installed" want
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing dbsync and its pinned dependencies into .venv ..." >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]" >&2
    echo "$want" > "$stamp"
  fi
}

mysql_up() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import pymysql
pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", connect_timeout=3).close()
PY
}

redis_up() {
  "$VENV/bin/python" -c 'import redis; redis.Redis(host="127.0.0.1", port=6379, socket_timeout=3).ping()' 2>/dev/null
}

ensure_services() {
  if ! mysql_up; then
    if [ -x /usr/sbin/mariadbd ] && command -v start-stop-daemon >/dev/null; then
      echo "MariaDB is not answering on 127.0.0.1:3306; starting /usr/sbin/mariadbd ..." >&2
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
      for _ in $(seq 1 60); do mysql_up && break; sleep 1; done
    fi
    mysql_up || {
      echo "error: the tests need MariaDB (or MySQL) on 127.0.0.1:3306, user root, empty password." >&2
      echo "       Install it (Debian: apt-get install mariadb-server) and start it." >&2
      exit 1; }
  fi
  if ! redis_up; then
    if command -v redis-server >/dev/null; then
      echo "Redis is not answering on 127.0.0.1:6379; starting redis-server ..." >&2
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
      for _ in $(seq 1 30); do redis_up && break; sleep 1; done
    fi
    redis_up || {
      echo "error: the tests need Redis on 127.0.0.1:6379." >&2
      echo "       Install it (Debian: apt-get install redis-server) and start it." >&2
      exit 1; }
  fi
}
