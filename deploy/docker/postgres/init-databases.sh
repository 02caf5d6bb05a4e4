#!/bin/sh
# Runs once, when the PostgreSQL volume is empty (docker-entrypoint-initdb.d). One role and
# one database per owner, so a service's credentials open its own database and no other.
# Passwords come from the container's environment (docker-compose.yml); psql quotes them.
# The entrypoint runs this file, or sources it when it lost its executable bit, so it sets
# no shell options of its own beyond -e and checks its variables explicitly.
set -e
: "${GEF_USER_DB_PASSWORD:?}" "${GEF_SCRIPT_DB_PASSWORD:?}" "${GEF_EXECUTION_DB_PASSWORD:?}"
: "${GEF_GATEWAY_DB_PASSWORD:?}" "${TEMPORAL_DB_PASSWORD:?}" "${KEYCLOAK_DB_PASSWORD:?}"

create_role() {
  # $1 role, $2 password
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$1" -v password="$2" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
}

create_database() {
  # $1 database, $2 owning role
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v database="$1" -v owner="$2" <<'SQL'
CREATE DATABASE :"database" OWNER :"owner" ENCODING 'UTF8';
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
}

# Our services: role and database share the name.
create_role gef_user "$GEF_USER_DB_PASSWORD"
create_database gef_user gef_user
create_role gef_script "$GEF_SCRIPT_DB_PASSWORD"
create_database gef_script gef_script
create_role gef_execution "$GEF_EXECUTION_DB_PASSWORD"
create_database gef_execution gef_execution
create_role gef_gateway "$GEF_GATEWAY_DB_PASSWORD"
create_database gef_gateway gef_gateway

# Temporal: persistence and visibility; temporal-sql-tool applies the schemas.
create_role temporal "$TEMPORAL_DB_PASSWORD"
create_database temporal temporal
create_database temporal_visibility temporal

# Keycloak creates its own tables at first start.
create_role keycloak "$KEYCLOAK_DB_PASSWORD"
create_database keycloak keycloak
