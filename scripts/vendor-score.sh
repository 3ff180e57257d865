#!/usr/bin/env bash
# Scores `pharos parse --json` against the labelled vendor-log dev set (issue 18): for every
# package of ../shared/corpora/vendor-logs/elastic-pipeline-tests, the share of lines recognised
# and of the labelled fields (addresses, ports, user, URL, method, domain) found in the output.
# Builds the release binary first unless PHAROS_BIN names one. Extra arguments go to score.py
# (e.g. --misses 20, --json out.json).
#
#   scripts/vendor-score.sh                  # the per-package table and the overall figures
#   scripts/vendor-score.sh --misses 10      # and what was missed, per package
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${PHAROS_SHARED:-../shared}"
corpus="$shared/corpora/vendor-logs/elastic-pipeline-tests"
if [ ! -f "$corpus/score.py" ]; then
  echo "error: $corpus/score.py is absent; put the shared corpora beside the repository or set PHAROS_SHARED" >&2
  exit 1
fi
bin="${PHAROS_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --locked -p pharos >&2
  bin="${CARGO_TARGET_DIR:-target}/release/pharos"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
packages=()
for d in "$corpus"/*/; do
  packages+=("${d%/}")
done
exec python3 "$corpus/score.py" "$@" --cmd "$bin parse --json" "${packages[@]}"
