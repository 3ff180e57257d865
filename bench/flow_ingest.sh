#!/usr/bin/env bash
# Loopback flow ingest, side by side in one run: nfcapd (Debian nfdump, `-y -B 4194304`) against
# `pharos run` with its defaults, fed by the same sender(s) with the same generated NetFlow v9
# capture of 10 M varied flows. What counts is what each one STORED: after each collector is
# stopped, its archive is queried (nfcapd: `nfdump -R DIR -I`; Pharos: `pharos flows top proto
# --json` over its Parquet archive).
#
# Modes (each run for nfcapd, then for pharos):
#   paced   one sender at PACED_FLOWS flows/s (default 1,000,000) for PACED_SECONDS (default 60):
#           the capture is looped as often as needed (the flows repeat; both collectors store
#           every copy)
#   burst1  one sender flat out, the capture once
#   burst2  two senders flat out at once, the capture once each
#   crash   (pharos only, not in the default MODES) paced as above, SIGKILL after CRASH_AFTER
#           seconds (default 20), restart on the same data directory, clean stop: the flows
#           received before the kill (pharos_flow_records_consumed_total read just before it)
#           minus those stored, in seconds at the paced rate, is what the crash lost
#
# Usage: bench/flow_ingest.sh                 (all modes, fast sender)
# Env:   PHAROS_BIN   the pharos binary (default: build target/release/pharos)
#        MODES        subset of "paced burst1 burst2"
#        SENDER       pharos (default: `pharos replay`, one sendto per datagram, no Python in the
#                     loop) or python (bench/send_udp.py, one Python socket)
#        FLOWS        flows in the capture (default 10,000,000; 30 per datagram)
#        CAPTURE      path of the capture (generated there once and reused; default
#                     $WORK/flows-v9.pcap)
#        WORK         work directory (default: a fresh temp dir, removed at exit unless KEEP=1)
#        NF_PORT / PH_PORT   loopback UDP ports of nfcapd / pharos (default 19995 / 19996)
# Prints one table: collector, mode, sender, offered (flows sent and the senders' rate), flows
# stored, loss, kernel drops (datagrams), CPU seconds per million stored flows (the collector
# process from start to exit, merges and shutdown included) and archive bytes per stored flow.
# Every load loop is bounded (the capture, sent a fixed number of times). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
FLOWS=${FLOWS:-10000000}
MODES=${MODES:-paced burst1 burst2}
SENDER=${SENDER:-pharos}
PACED_FLOWS=${PACED_FLOWS:-1000000}
PACED_SECONDS=${PACED_SECONDS:-60}
NF_PORT=${NF_PORT:-19995}
PH_PORT=${PH_PORT:-19996}
PER_DATAGRAM=30
WORK=${WORK:-$(mktemp -d /tmp/pharos-flow-ingest.XXXXXX)}
mkdir -p "$WORK"
CAPTURE=${CAPTURE:-$WORK/flows-v9.pcap}
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

need_pkg nfcapd nfdump
pharos_bin

if [ ! -s "$CAPTURE" ]; then
  echo "== generating $FLOWS NetFlow v9 flows into $CAPTURE" >&2
  nice python3 bench/gen_flows.py "$CAPTURE" --flows "$FLOWS" --version 9 --jobs "$(nproc)" >&2
fi
DATAGRAMS=$(( (FLOWS + PER_DATAGRAM - 1) / PER_DATAGRAM ))
CAP_FLOWS=$(( DATAGRAMS * PER_DATAGRAM ))
echo "== capture: $DATAGRAMS datagrams, $CAP_FLOWS flows ($(stat -c %s "$CAPTURE") bytes)" >&2

# Sends the capture to 127.0.0.1:PORT as mode MODE; prints "flows_offered flows_per_second".
send() { # port mode
  local port=$1 mode=$2 n=1 loops=1 args=()
  case $mode in
    paced)
      loops=$(( (PACED_FLOWS * PACED_SECONDS + CAP_FLOWS - 1) / CAP_FLOWS ))
      local dps=$(( PACED_FLOWS / PER_DATAGRAM ))
      args=(--rate "$dps");;
    burst1) args=(--burst);;
    burst2) n=2; args=(--burst);;
  esac
  local t0 t1 pids=() i
  t0=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    if [ "$SENDER" = python ]; then
      local rate=0; [ "$mode" = paced ] && rate=$(( PACED_FLOWS / PER_DATAGRAM ))
      python3 bench/send_udp.py "$CAPTURE" 127.0.0.1 "$port" "$rate" "$loops" >"$WORK/send.$i" 2>&1 &
    else
      local l=(); [ "$loops" -gt 1 ] && l=(--loop "$loops")
      "$PHAROS_BIN" replay "$CAPTURE" --to "127.0.0.1:$port" "${args[@]}" "${l[@]}" >"$WORK/send.$i" 2>&1 &
    fi
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  local offered=$(( CAP_FLOWS * loops * n ))
  awk -v o="$offered" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d %.0f\n", o, o / (b - a) }'
}

ROWS=()
row() { ROWS+=("$(printf '| %-8s | %-6s | %-6s | %10s | %11s | %10s | %7s | %12s | %12s | %10s |' "$@")"); }
loss() { awk -v s="$1" -v r="$2" 'BEGIN { printf "%.3f %%", (s - r) * 100 / s }'; }
per_m() { awk -v c="$1" -v f="$2" 'BEGIN { if (f > 0) printf "%.2f", c / (f / 1e6); else print "-" }'; }
per_flow() { awk -v b="$1" -v f="$2" 'BEGIN { if (f > 0) printf "%.1f", b / f; else print "-" }'; }
# CPU seconds (user + system) of a process that is still running.
cpu_s() { awk -v k="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / k }' "/proc/$1/stat"; }

# Runs COMMAND... in the background under /usr/bin/time, whose report (user + system seconds
# of the whole process, until it exits) goes to FILE.
timed() { # file command...
  local f=$1; shift
  /usr/bin/time -f '%U %S' -o "$f" "$@" &
}
time_s() { awk '{ printf "%.2f", $1 + $2 }' "$1"; }

run_nfcapd() { # mode
  local mode=$1 dir=$WORK/nf-$1; rm -rf "$dir"; mkdir -p "$dir"
  timed "$dir.time" nfcapd -b 127.0.0.1 -p "$NF_PORT" -w "$dir" -t 3600 -y -B 4194304 -I bench
  local tpid=$!; PIDS+=("$tpid")
  wait_udp_bound "$NF_PORT"
  local sent; sent=$(send "$NF_PORT" "$mode")
  sleep 3
  local kdrops; kdrops=$(udp_drops "$NF_PORT")
  local pid; pid=$(pgrep -P "$tpid" -x nfcapd || true)
  [ -n "$pid" ] && kill -TERM "$pid"
  wait "$tpid" || true
  local got; got=$(nfdump -R "$dir" -I 2>/dev/null | awk '/^Flows:/ { print $2; exit }')
  got=${got:-0}
  local bytes; bytes=$(du -sb "$dir" | cut -f1)
  local cpu; cpu=$(time_s "$dir.time")
  row nfcapd "$mode" "$SENDER" "${sent% *}" "${sent#* }" "$got" "$(loss "${sent% *}" "$got")" "$kdrops" "$(per_m "$cpu" "$got")" "$(per_flow "$bytes" "$got")"
  echo "nfcapd $mode: offered ${sent% *} at ${sent#* } flows/s, stored $got, kernel drops $kdrops, CPU $cpu s, $bytes bytes" >&2
}

metric() { # base name: sum over series
  curl -s "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'
}

run_pharos() { # mode
  local mode=$1 dir=$WORK/ph-$1; rm -rf "$dir"; mkdir -p "$dir"
  cat >"$dir/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
public_metrics = true
[store]
data_dir = "$dir/data"
[log]
level = "warn"
[flow]
listen = ["127.0.0.1:$PH_PORT"]
[syslog]
enabled = false
EOF
  timed "$dir.time" "$PHAROS_BIN" run --config "$dir/pharos.toml" 2>"$dir/pharos.log"
  local tpid=$!; PIDS+=("$tpid")
  for _ in $(seq 1 600); do [ -s "$dir/data/api.addr" ] && break; sleep 0.05; done
  local base; base="http://$(cat "$dir/data/api.addr")"
  local sent; sent=$(send "$PH_PORT" "$mode")
  # Wait until the received count is stable for 1 s.
  local got=-1 now
  while :; do
    sleep 1
    now=$(metric "$base" pharos_flow_records_consumed_total)
    [ "$now" = "$got" ] && break
    got=$now
  done
  local kdrops; kdrops=$(udp_drops "$PH_PORT")
  local spilled; spilled=$(metric "$base" pharos_flow_store_spilled_flows_total)
  local dropped; dropped=$(metric "$base" pharos_flow_store_dropped_total)
  # Let the minute merges finish (they are part of the cost and of the bytes per flow): wait
  # past the next minute boundary plus compact_after_seconds, then while a merge runs.
  local pid; pid=$(pgrep -P "$tpid" -x pharos || true)
  local until=$(( ($(date +%s) / 60 + 1) * 60 + 12 ))
  while [ "$(date +%s)" -lt "$until" ]; do sleep 1; done
  local merges=-1 m
  for _ in $(seq 1 600); do
    m=$(metric "$base" pharos_flow_store_compactions_total)
    if [ "$m" = "$merges" ] && ! grep -qx flow-compact /proc/"$pid"/task/*/comm 2>/dev/null; then break; fi
    merges=$m; sleep 3
  done
  [ -n "$pid" ] && kill -TERM "$pid"
  wait "$tpid" || true
  local stored; stored=$("$PHAROS_BIN" flows top proto --by flows -n 300 --json --data-dir "$dir/data" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["total"]["flows"])')
  local bytes; bytes=$(du -sb "$dir/data/flows" | cut -f1)
  local cpu; cpu=$(time_s "$dir.time")
  row pharos "$mode" "$SENDER" "${sent% *}" "${sent#* }" "$stored" "$(loss "${sent% *}" "$stored")" "$kdrops" "$(per_m "$cpu" "$stored")" "$(per_flow "$bytes" "$stored")"
  echo "pharos $mode: offered ${sent% *} at ${sent#* } flows/s, received $got, stored $stored, kernel drops $kdrops, spilled $spilled, dropped by the archive $dropped, CPU $cpu s, $bytes bytes" >&2
  grep -iE 'warn|error' "$dir/pharos.log" | head -5 >&2 || true
}

run_crash() {
  local dir=$WORK/ph-crash; rm -rf "$dir"; mkdir -p "$dir"
  printf '[api]\nlisten = "127.0.0.1:0"\npublic_metrics = true\n[store]\ndata_dir = "%s"\n[log]\nlevel = "warn"\n[flow]\nlisten = ["127.0.0.1:%s"]\n[syslog]\nenabled = false\n' \
    "$dir/data" "$PH_PORT" >"$dir/pharos.toml"
  "$PHAROS_BIN" run --config "$dir/pharos.toml" 2>"$dir/pharos.log" &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 1 600); do [ -s "$dir/data/api.addr" ] && break; sleep 0.05; done
  local base; base="http://$(cat "$dir/data/api.addr")"
  local dps=$(( PACED_FLOWS / PER_DATAGRAM ))
  "$PHAROS_BIN" replay "$CAPTURE" --to "127.0.0.1:$PH_PORT" --rate "$dps" --loop 100 >"$WORK/send.crash" 2>&1 &
  local spid=$!; PIDS+=("$spid")
  sleep "${CRASH_AFTER:-20}"
  local got; got=$(metric "$base" pharos_flow_records_consumed_total)
  kill -KILL "$pid"
  kill "$spid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  rm -f "$dir/data/api.addr"
  "$PHAROS_BIN" run --config "$dir/pharos.toml" 2>>"$dir/pharos.log" &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 1 600); do [ -s "$dir/data/api.addr" ] && break; sleep 0.05; done
  kill -TERM "$pid"; wait "$pid" || true
  local stored; stored=$("$PHAROS_BIN" flows top proto --by flows -n 300 --json --data-dir "$dir/data" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["total"]["flows"])')
  local lost=$(( got - stored ))
  local secs; secs=$(awk -v l="$lost" -v r="$PACED_FLOWS" 'BEGIN { printf "%.3f", l / r }')
  CRASH_LINE="SIGKILL after ${CRASH_AFTER:-20} s at $PACED_FLOWS flows/s: received $got, stored $stored after the restart, lost $lost ($secs s of flows)"
  echo "pharos crash: $CRASH_LINE" >&2
}
CRASH_LINE=""

echo "== machine: $(nproc) CPUs, $(uname -r), net.core.rmem_max=$(cat /proc/sys/net/core/rmem_max); $(uptime)" >&2
for mode in $MODES; do
  if [ "$mode" = crash ]; then run_crash; continue; fi
  run_nfcapd "$mode"
  run_pharos "$mode"
done

echo
echo "NetFlow v9, capture of $CAP_FLOWS flows ($DATAGRAMS datagrams), sender: $SENDER, $(nproc) CPUs, loopback, no pinning"
echo "| collector | mode   | sender | offered    | offered f/s | stored     | loss    | kernel drops | CPU s / M    | bytes/flow |"
echo "|----------|--------|--------|------------|-------------|------------|---------|--------------|--------------|------------|"
[ "${#ROWS[@]}" -gt 0 ] && printf '%s\n' "${ROWS[@]}"
[ -n "$CRASH_LINE" ] && echo "crash: $CRASH_LINE"
true
