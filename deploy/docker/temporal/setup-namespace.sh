#!/bin/sh
# Creates the namespace and the custom search attributes the workflows use, once the
# Temporal frontend answers. Idempotent: what exists is left alone.
# Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_RETENTION,
# GEF_SEARCH_ATTRIBUTES (comma list of Name=Type, as deploy/src/temporal.ts registers them
# on the development server).
set -eu

namespace=${TEMPORAL_NAMESPACE:-default}

tries=0
until temporal operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "Temporal at $TEMPORAL_ADDRESS is not healthy" >&2; exit 1; }
  sleep 2
done

if temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
  echo "namespace $namespace exists"
else
  temporal operator namespace create --namespace "$namespace" --retention "${TEMPORAL_RETENTION:-7d}"
  echo "namespace $namespace created"
fi

existing=$(temporal operator search-attribute list --namespace "$namespace")
for attribute in $(echo "${GEF_SEARCH_ATTRIBUTES:-}" | tr ',' ' '); do
  name=${attribute%%=*}
  type=${attribute#*=}
  if echo "$existing" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --namespace "$namespace" --name "$name" --type "$type"
    echo "search attribute $name ($type) created"
  fi
done
