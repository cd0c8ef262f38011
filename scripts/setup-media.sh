#!/usr/bin/env bash
# Set-up for samtale-media's tests: a real S3-compatible server that verifies
# SigV4 signatures (s3s-fs). Installed from crates.io only when missing, into
# cargo's default install root (~/.cargo/bin).
set -euo pipefail

if command -v s3s-fs >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/s3s-fs" ]; then
  exit 0
fi

echo "setup-media: installing s3s-fs 0.14.1 (cargo install, a few minutes)"
# Build in cargo's own temporary directory, not the workspace's target dir,
# so the install does not wait on (or hold) the workspace build lock.
env -u CARGO_TARGET_DIR -u CARGO_INSTALL_ROOT \
  cargo install s3s-fs@0.14.1 --locked --features binary --quiet
