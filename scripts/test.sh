#!/usr/bin/env bash
# Runs the whole test suite: installs and starts what the tests need (PostgreSQL, Redis, the
# tansu Kafka-protocol broker, the aiosmtpd SMTP sink, moto's S3 server, localstripe, the
# OpenAPI validator and the Schemathesis fuzzer), then runs every test
# with every feature, and the kernel's tests again with no optional feature at all.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

ensure_postgres
ensure_redis
ensure_tansu
ensure_python_tools
export TEST_DATABASE_URL="$ADMIN_DATABASE_URL" TEST_REDIS_URL=redis://127.0.0.1:6379
export TEST_PYTHON="$BASALT_STATE_DIR/venv/bin/python"

# Each test makes its own database; drop what earlier runs left behind.
psql "$ADMIN_DATABASE_URL" -qAtc "select format('drop database if exists %I', datname) from pg_database where datname like 'basalt_test_%'" \
  | while read -r stmt; do psql "$ADMIN_DATABASE_URL" -qc "$stmt" >/dev/null 2>&1 || true; done

if cargo nextest --version >/dev/null 2>&1; then
  run_tests() { cargo nextest run --no-fail-fast "$@"; }
else
  run_tests() { cargo test --no-fail-fast "$@"; }
fi
say "Tests: all features"
run_tests --all-features
say "Tests: --no-default-features (kernel only)"
run_tests --no-default-features
