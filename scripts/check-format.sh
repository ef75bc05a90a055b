#!/usr/bin/env bash
# Every .rs file under src/, tests/ and benches/ must be formatted. `cargo fmt --check` only
# walks `mod` trees, so a module declared inside a macro (or never declared) escapes it;
# rustfmt on each file does not.
set -euo pipefail
cd "$(dirname "$0")/.."
edition=$(sed -n 's/^edition *= *"\([0-9]*\)".*/\1/p' Cargo.toml | head -n1)
bad=0
while IFS= read -r -d '' file; do
  if ! rustfmt --check --edition "$edition" "$file" >/dev/null 2>&1; then
    echo "not formatted: $file (run: rustfmt --edition $edition $file)" >&2
    bad=1
  fi
done < <(find src tests benches -name '*.rs' -print0)
exit "$bad"
