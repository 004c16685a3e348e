#!/bin/sh
# Container entrypoint: `start` (default) migrates then serves; `migrate`, `audit` and `token ...`
# run the matching npm script. exec keeps the service PID 1 so SIGTERM reaches it.
set -eu
cmd=${1:-start}
[ "$#" -gt 0 ] && shift
case "$cmd" in
  # --max-semi-space-size=4 (MiB): V8's young generation grows to 2 x 16 MiB under load and keeps it
  # committed; 2 x 4 MiB saves ~24 MiB RSS for a few % more minor-GC time (see bench/memory.ts).
  start) exec node --enable-source-maps --max-semi-space-size=4 dist/main.js "$@" ;;
  migrate) exec node --import tsx src/db/migrate-cli.ts "$@" ;;
  audit) exec node --import tsx src/billing/audit-cli.ts "$@" ;;
  token) exec node --import tsx src/api/token-cli.ts "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
