#!/usr/bin/env bash
# Runs Basalt with every domain on sensible defaults. Uses DATABASE_URL when set; otherwise
# finds or installs and starts PostgreSQL and creates the `basalt` database. Extra arguments
# go to `cargo run` (e.g. `-- --no-default-features --features auth`) — see the README.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

if [ -z "${DATABASE_URL:-}" ]; then
  ensure_postgres
  DATABASE_URL=$(ensure_database basalt)
  export DATABASE_URL
fi
say "Serving on http://127.0.0.1:${BASALT__SERVER__PORT:-8080} (Swagger UI at /docs/)"
exec cargo run --release "$@" -- serve
