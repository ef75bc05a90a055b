#!/usr/bin/env bash
# Every domain alone (with the dependencies Cargo.toml declares) and the bare kernel must
# build and pass clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
domains=$(sed -n '/^\[features\]/,/^\[/p' Cargo.toml | grep -oE '^[a-z-]+ = \[' | cut -d' ' -f1 \
  | grep -vE '^(default|kafka|redis|s3)$')
for combo in "" $domains kafka redis s3; do
  echo "==> clippy --no-default-features --features '${combo}'"
  cargo clippy --quiet --no-default-features --features "$combo" --lib --bins -- -D warnings
done
