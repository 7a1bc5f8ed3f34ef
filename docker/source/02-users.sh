# shellcheck shell=bash
# Least-privilege user for dbsync on the demo source: SELECT on the source database, nothing
# else. Sourced (not executed) by the MariaDB image's entrypoint on first start, which
# defines docker_process_sql (runs SQL as root over the local socket) and MARIADB_DATABASE.
# Database names must be plain identifiers (letters, digits, _ and $).
: "${MARIADB_DATABASE:?}" "${SOURCE_DB_USER:?set SOURCE_DB_USER in .env}" \
  "${SOURCE_DB_PASS:?set SOURCE_DB_PASS in .env}"

sql_string() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g"; }

docker_process_sql --database=mysql <<EOSQL
CREATE USER IF NOT EXISTS '$(sql_string "$SOURCE_DB_USER")'@'%'
  IDENTIFIED BY '$(sql_string "$SOURCE_DB_PASS")';
GRANT SELECT ON \`${MARIADB_DATABASE}\`.* TO '$(sql_string "$SOURCE_DB_USER")'@'%';
FLUSH PRIVILEGES;
EOSQL
