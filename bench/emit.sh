#!/usr/bin/env bash
# Emission throughput and latency against the real `pharos` binary (release): SUBS webhook
# subscriptions to one local receiver, then SUBS SSE clients, each fed N pushed messages, and the
# same pushes with no subscriber as the reference. Prints one markdown table.
#
# Usage: bench/emit.sh  (N=5000 SUBS=100 PUSH_BATCH=500 WEBHOOK_BATCH=true PACED=1000 RATE=100)
# Env:   N, SUBS, PUSH_BATCH, WEBHOOK_BATCH (true: one POST per delivered batch; false: per change),
#        PACED, RATE (then PACED messages one per request at RATE/s: latency without a backlog),
#        CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p pharos --bench emit
