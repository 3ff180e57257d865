#!/usr/bin/env bash
# Loopback flow ingest, side by side in one run: nfcapd (Debian nfdump, `-B 4194304` as in
# shared/specs/peers-flow.md §5.2) against `pharos run`, both fed by the same sender
# (`pharos replay`) with the same generated NetFlow v5 capture, (a) paced and (b) as a burst.
#
# Usage: bench/flow_ingest.sh            (FLOWS=510000 RATE=20000 VERSION=5 by default)
# Env:   PHAROS_BIN  use this pharos binary instead of building target/release/pharos
#        FLOWS       flows in the generated capture (30 per datagram)
#        RATE        paced replay rate, datagrams per second
#        VERSION     5 or 9 (NetFlow version of the generated capture)
#        WORK        work directory (default: a fresh temp dir, removed at exit unless KEEP=1)
#        NF_PORT / PH_PORT   loopback UDP ports of nfcapd / pharos (default 19995 / 19996)
#        PIN         1 (default): the sender runs on CPU 0 and each collector on CPU 1 (taskset), as
#                    with a remote exporter, so that the kernel does not place the receiving thread
#                    on the sender's CPU; 0: no pinning
# Prints one table: flows sent, flows received, loss, kernel drops (datagrams), the sender's rate and
# the collector's CPU time during the run (nfcapd: the whole process; pharos: its socket thread,
# which receives and decodes) per collector and mode.
# Needs root or sudo for `apt-get install nfdump` when nfcapd is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
FLOWS=${FLOWS:-510000}
RATE=${RATE:-20000}
VERSION=${VERSION:-5}
NF_PORT=${NF_PORT:-19995}
PH_PORT=${PH_PORT:-19996}
PIN=${PIN:-1}
SENDER_CPU=(); COLLECTOR_CPU=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  SENDER_CPU=(taskset -c 0); COLLECTOR_CPU=(taskset -c 1)
fi
WORK=${WORK:-$(mktemp -d /tmp/pharos-flow-bench.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

need_pkg nfcapd nfdump
pharos_bin

PCAP=$WORK/flows.pcap
echo "== generating $FLOWS NetFlow v$VERSION flows" >&2
python3 bench/gen_flows.py "$PCAP" --flows "$FLOWS" --version "$VERSION" >&2
SENT=$("$PHAROS_BIN" decode --stats "$PCAP" 2>&1 >/dev/null | sed -n 's/^# .* \([0-9]*\) flows$/\1/p')
DATAGRAMS=$("$PHAROS_BIN" decode --stats "$PCAP" 2>&1 >/dev/null | sed -n 's/^# .* \([0-9]*\) flow datagrams.*/\1/p')
echo "== capture: $DATAGRAMS datagrams, $SENT flows ($(stat -c %s "$PCAP") bytes)" >&2

# Replays the capture; prints the sender's datagrams/s.
send() { # port mode
  local args=(--to "127.0.0.1:$1")
  if [ "$2" = paced ]; then args+=(--rate "$RATE"); else args+=(--burst); fi
  "${SENDER_CPU[@]}" "$PHAROS_BIN" replay "$PCAP" "${args[@]}" | tee -a "$WORK/replay.log" | sed -n 's/.*: \([0-9]*\) datagrams\/s.*/\1/p'
}

ROWS=()
row() { ROWS+=("$(printf '| %-26s | %-6s | %9s | %9s | %7s | %12s | %15s | %8s |' "$@")"); }
# CPU time (user + system, ms) of a process, or of its threads named $2.
cpu_ms() {
  local tick; tick=$(getconf CLK_TCK)
  if [ -n "${2:-}" ]; then
    for t in /proc/"$1"/task/*; do
      if [ "$(cat "$t/comm")" = "$2" ]; then awk -v k="$tick" '{ print int(($14 + $15) * 1000 / k) }' "$t/stat"; fi
    done
  else
    awk -v k="$tick" '{ print int(($14 + $15) * 1000 / k) }' /proc/"$1"/stat
  fi
}
loss() { awk -v s="$1" -v r="$2" 'BEGIN { printf "%.2f %%", (s - r) * 100 / s }'; }

run_nfcapd() { # mode
  local dir=$WORK/nf-$1; mkdir -p "$dir"
  "${COLLECTOR_CPU[@]}" nfcapd -D -b 127.0.0.1 -p "$NF_PORT" -w "$dir" -t 60 -B 4194304 -P "$dir.pid" -I bench >/dev/null 2>&1
  wait_udp_bound "$NF_PORT"
  local pid; pid=$(cat "$dir.pid")
  local cpu0; cpu0=$(cpu_ms "$pid")
  local rate; rate=$(send "$NF_PORT" "$1")
  sleep 3
  local kdrops; kdrops=$(udp_drops "$NF_PORT")
  local cpu=$(( $(cpu_ms "$pid") - cpu0 ))
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  local info; info=$(nfdump -R "$dir" -I 2>/dev/null)
  local got; got=$(echo "$info" | sed -n 's/^Flows: \([0-9]*\)/\1/p')
  local seqf; seqf=$(echo "$info" | sed -n 's/^Sequence failures: \([0-9]*\).*/\1/p')
  row "nfcapd -B 4194304" "$1" "$SENT" "${got:-0}" "$(loss "$SENT" "${got:-0}")" "$kdrops" "${rate} dgram/s" "$cpu"
  echo "nfcapd $1: received ${got:-0} of $SENT flows, kernel drops $kdrops, sequence failures ${seqf:-?}" >&2
}

metric() { # base name: sum over series
  curl -s "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'
}
run_pharos() { # mode rcvbuf label
  local dir=$WORK/ph-$1-$2; mkdir -p "$dir"
  cat >"$dir/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
[store]
data_dir = "$dir/data"
[log]
level = "warn"
[flow]
listen = ["127.0.0.1:$PH_PORT"]
receive_buffer_bytes = $2
EOF
  "${COLLECTOR_CPU[@]}" "$PHAROS_BIN" run --config "$dir/pharos.toml" 2>"$dir/pharos.log" &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 1 600); do [ -s "$dir/data/api.addr" ] && break; sleep 0.05; done
  local base; base="http://$(cat "$dir/data/api.addr")"
  local thread="flow-udp-$PH_PORT"
  local cpu0; cpu0=$(cpu_ms "$pid" "$thread")
  local rate; rate=$(send "$PH_PORT" "$1")
  # Wait until the count is stable for 1 s.
  local got=-1 now
  while :; do
    sleep 1
    now=$(metric "$base" pharos_flow_records_consumed_total)
    [ "$now" = "$got" ] && break
    got=$now
  done
  local kdrops; kdrops=$(metric "$base" pharos_flow_kernel_drops_total)
  local qdrops; qdrops=$(metric "$base" pharos_flow_records_dropped_total)
  local cpu=$(( $(cpu_ms "$pid" "$thread") - cpu0 ))
  kill -TERM "$pid"; wait "$pid" || true
  row "$3" "$1" "$SENT" "$got" "$(loss "$SENT" "$got")" "$kdrops" "${rate} dgram/s" "$cpu"
  echo "$3 $1: received $got of $SENT flows, kernel drops $kdrops, queue drops $qdrops (records)" >&2
}

echo "== machine: $(nproc) CPUs, $(uname -r), net.core.rmem_max=$(cat /proc/sys/net/core/rmem_max)" >&2
for mode in paced burst; do
  run_nfcapd "$mode"
  run_pharos "$mode" 33554432 "pharos (default 32 MiB)"
done
run_pharos burst 4194304 "pharos (4 MiB, as nfcapd)"

echo
echo "NetFlow v$VERSION, $DATAGRAMS datagrams / $SENT flows, sender: pharos replay (paced = $RATE datagrams/s), $(nproc) CPUs, pinned: ${PIN}"
echo "| collector                  | mode   | sent      | received  | loss    | kernel drops | sender rate     | CPU ms   |"
echo "|----------------------------|--------|-----------|-----------|---------|--------------|-----------------|----------|"
printf '%s\n' "${ROWS[@]}"
