#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages) when it is
# missing, then runs lints and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build outside the clone so CI runs on the same machine reuse the cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/samtale-target}"
export CARGO_TERM_COLOR=never
# Each clone would leave gigabytes of incremental state in the shared
# target directory that no later (fresh) clone can use.
export CARGO_INCREMENTAL=0
# The messaging store tests run a throwaway PostgreSQL (initdb/pg_ctl ship
# with this machine kind); they must not skip silently.
export SAMTALE_REQUIRE_PG=1

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v vpxenc >/dev/null 2>&1 || need+=(vpx-tools)
command -v opusenc >/dev/null 2>&1 || need+=(opus-tools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v turnutils_uclient >/dev/null 2>&1 || need+=(coturn)
# Messaging across nodes: a real NATS server links two samtale processes.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
# The messaging store tests start a throwaway PostgreSQL (as the `postgres`
# user when run as root).
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Per-crate set-up (tools a crate's tests need, e.g. a real S3 server).
for setup in scripts/setup-*.sh; do
  [ -e "$setup" ] && bash "$setup"
done

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

# The QoE lab's live test starts the samtale binary.
cargo build --quiet -p samtale --bin samtale
export SAMTALE_BIN="$CARGO_TARGET_DIR/debug/samtale"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
