#!/bin/sh
# Container entrypoint: `start` (default) migrates then serves; `migrate`, `audit` and `token ...`
# run the matching npm script. exec keeps the service PID 1 so SIGTERM reaches it.
set -eu
cmd=${1:-start}
[ "$#" -gt 0 ] && shift
case "$cmd" in
  # The same environment and flags as package.json's start script (bench/memory.ts measures those):
  # MALLOC_ARENA_MAX=2 and a fixed MALLOC_MMAP_THRESHOLD_ (128 KiB): glibc otherwise raises its mmap
  # threshold to 19 MiB after the first argon2 verification frees its block, and from then on keeps
  # freed memory in the main and per-thread arenas (~10-15 MiB more RSS with production hashes).
  # --max-semi-space-size=4 (MiB): V8's young generation grows to 2 x 16 MiB under load and keeps it
  # committed; 2 x 4 MiB saves ~24 MiB RSS for a few % more minor-GC time.
  # --heap-growing-percent=25: the old generation may grow to 1.25x what survived the last full GC
  # before the next one (V8 allows up to 4x on a machine with this much memory); full GCs stay short.
  # From 50 to 25 it saved ~8 MiB at 100k accounts, the room the RADIUS socket thread's isolate needs.
  # --no-allocation-site-pretenuring: V8 switches an allocation site to allocating straight into the
  # old generation once most of its objects survive a minor GC. Accounting under load (requests waiting
  # for a group commit) did that to the packet decoder's sites, and the decision sticks: afterwards
  # every Access-Request's short-lived objects went to the old generation, ~200 bytes a request, and a
  # full GC every few seconds stalled the event loop (bench:compare's paced run: p99 56-85 ms).
  start)
    export MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
    exec node --enable-source-maps --max-semi-space-size=4 --heap-growing-percent=25 --no-allocation-site-pretenuring dist/main.js "$@" ;;
  migrate) exec node --import tsx src/db/migrate-cli.ts "$@" ;;
  audit) exec node --import tsx src/billing/audit-cli.ts "$@" ;;
  token) exec node --import tsx src/api/token-cli.ts "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
