# shellcheck shell=bash
# Least-privilege user for dbsync on the target: exactly what a sync needs, on the target
# database (MARIADB_DATABASE = TARGET_DB_NAME) and its staging database (<db>_staging, or
# STAGING_DB_NAME), which is created here so the user needs no global CREATE.
#   CREATE, ALTER, DROP, INDEX  mirror the source schema, build and swap full-refresh copies
#   INSERT, UPDATE, DELETE       load rows (LOAD DATA LOCAL INFILE, merge by primary key)
#   SELECT                       read cursors, row counts, _dbsync_status
# No FILE privilege: rows travel with LOAD DATA *LOCAL* (the server runs with local_infile).
# Sourced by the MariaDB image's entrypoint on first start (docker_process_sql comes from it).
: "${MARIADB_DATABASE:?}" "${TARGET_DB_USER:?set TARGET_DB_USER in .env}" \
  "${TARGET_DB_PASS:?set TARGET_DB_PASS in .env}"

STAGING_DB="${STAGING_DB_NAME:-${MARIADB_DATABASE}_staging}"
TARGET_PRIVILEGES="SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX"

sql_string() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g"; }

docker_process_sql --database=mysql <<EOSQL
CREATE DATABASE IF NOT EXISTS \`${STAGING_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$(sql_string "$TARGET_DB_USER")'@'%'
  IDENTIFIED BY '$(sql_string "$TARGET_DB_PASS")';
GRANT ${TARGET_PRIVILEGES} ON \`${MARIADB_DATABASE}\`.* TO '$(sql_string "$TARGET_DB_USER")'@'%';
GRANT ${TARGET_PRIVILEGES} ON \`${STAGING_DB}\`.* TO '$(sql_string "$TARGET_DB_USER")'@'%';
FLUSH PRIVILEGES;
EOSQL
