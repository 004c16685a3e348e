#!/bin/sh
# Container entrypoint: `start` (default) migrates then serves; `migrate`, `audit` and `token ...`
# run the matching npm script. exec keeps the service PID 1 so SIGTERM reaches it.
set -eu
cmd=${1:-start}
[ "$#" -gt 0 ] && shift
case "$cmd" in
  start) exec node --enable-source-maps dist/main.js "$@" ;;
  migrate) exec node --import tsx src/db/migrate-cli.ts "$@" ;;
  audit) exec node --import tsx src/billing/audit-cli.ts "$@" ;;
  token) exec node --import tsx src/api/token-cli.ts "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
