#!/bin/sh
# Applies (or upgrades) Temporal's schemas in the two databases that
# deploy/docker/postgres/init-databases.sh created. Safe on every start: setup-schema
# leaves a versioned database alone and update-schema only moves it forward to the
# version this admin-tools image ships.
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD from
# the environment (docker-compose.yml); the database is chosen per call with SQL_DATABASE.
set -eu

schema_root=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at $SQL_HOST:$SQL_PORT"
tries=0
until nc -z "$SQL_HOST" "$SQL_PORT"; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "PostgreSQL did not answer" >&2; exit 1; }
  sleep 1
done

for store in temporal:temporal visibility:temporal_visibility; do
  dir=${store%%:*}
  db=${store#*:}
  echo "schema of $db"
  SQL_DATABASE=$db temporal-sql-tool setup-schema -v 0.0
  SQL_DATABASE=$db temporal-sql-tool update-schema -d "$schema_root/$dir/versioned"
done
echo "Temporal schemas are up to date"
