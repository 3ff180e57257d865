#!/usr/bin/env bash
# Scale-out throughput end to end into ClickHouse (issue 20), side by side with the single node
# into its Parquet archive, in one run, on the same capture. For each topology (COLLECTORS x
# ANALYSERS, one archiver, one API node; a 3-server NATS cluster with R3 streams, ClickHouse and
# PostgreSQL, all on this machine via scripts/cluster-demo.sh) the capture is sent by one
# `pharos replay` per collector at RATE flows/s each (default flat out, --burst); what counts is
# what a query later finds: `SELECT count() FROM flows` in ClickHouse (the single node: `pharos
# flows top proto --json` total), and the rate is that count over the time from the first
# datagram sent to the last flow stored.
#
# Usage: PHAROS_BIN=target/release/pharos bench/cluster.sh
# Env:   TOPOLOGIES  "C:A ..." collectors:analysers (default "1:1 1:2 1:4 2:1 2:2 2:4")
#        FLOWS       flows in the capture (default 3,000,000; NetFlow v9, bench/gen_flows.py)
#        CAPTURE     the capture (generated once, reused)
#        RATE        datagrams/s per sender (default: --burst, flat out)
# Prints a Markdown table: topology, flows sent, decoded by the collectors, stored, loss,
# end-to-end flows/s, seconds, when the stream held every flow, kernel drops and publish drops.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
FLOWS=${FLOWS:-3000000}
TOPOLOGIES=${TOPOLOGIES:-1:1 1:2 1:4 2:1 2:2 2:4}
TOP=${WORK:-$(mktemp -d /tmp/pharos-cluster-bench.XXXXXX)}
mkdir -p "$TOP"
chmod 755 "$TOP"  # PostgreSQL runs as nobody under it
CAPTURE=${CAPTURE:-$TOP/flows-v9.pcap}
pharos_bin
PH=$PHAROS_BIN
if [ ! -s "$CAPTURE" ]; then
  echo "== generating $FLOWS NetFlow v9 flows into $CAPTURE" >&2
  nice python3 bench/gen_flows.py "$CAPTURE" --flows "$FLOWS" --version 9 --jobs "$(nproc)" >&2
fi
CAP_FLOWS=$(( (FLOWS + 29) / 30 * 30 ))
SEND_ARGS=(--burst); [ -n "${RATE:-}" ] && SEND_ARGS=(--rate "$RATE")

metric() { # base name: sum over series
  curl -s "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'
}
now() { date +%s.%N; }
ROWS=()

# The single node: the same capture into `pharos run` with its defaults (Parquet archive).
single() {
  local d=$TOP/single; rm -rf "$d"; mkdir -p "$d"
  cat >"$d/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
public_metrics = true
[store]
data_dir = "$d/data"
[flow]
listen = ["127.0.0.1:0"]
EOF
  "$PH" run --config "$d/pharos.toml" >/dev/null 2>"$d/pharos.log" &
  local pid=$!
  for _ in $(seq 300); do [ -s "$d/data/flow.addr" ] && [ -s "$d/data/api.addr" ] && break; sleep 0.1; done
  local api=http://$(cat "$d/data/api.addr") t0 t1 got
  t0=$(now)
  "$PH" replay "$CAPTURE" --to "$(head -1 "$d/data/flow.addr")" "${SEND_ARGS[@]}" >/dev/null 2>&1
  # the archive has everything once the received flows stop growing and the process stopped
  local last=-1 cur
  while :; do cur=$(metric "$api" pharos_flow_records_total); [ "$cur" = "$last" ] && break; last=$cur; sleep 0.5; done
  local port; port=$(head -1 "$d/data/flow.addr"); port=${port##*:}
  local kd; kd=$(( $(udp_drops "$port") * 30 ))
  kill -TERM $pid; wait $pid || true
  t1=$(now)
  got=$("$PH" flows top proto --json --config "$d/pharos.toml" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["flows"])')
  ROWS+=("| single node (Parquet) | $CAP_FLOWS | $cur | $got | $(awk -v s=$CAP_FLOWS -v r=$got 'BEGIN{printf "%.2f %%", (s-r)*100/s}') | $(awk -v g=$got -v a=$t0 -v b=$t1 'BEGIN{printf "%.0f", g/(b-a)}') | $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.1f", b-a}') | - | $kd | - |")
}

topology() { # collectors analysers
  local c=$1 a=$2
  (
    export WORK=$TOP/c$c-a$a COLLECTORS=$c ANALYSERS=$a PHAROS_BIN=$PH SOURCE_ONLY=1
    rm -rf "$WORK"
    # shellcheck source=scripts/cluster-demo.sh
    . scripts/cluster-demo.sh
    trap cleanup EXIT
    start_cluster
    local t0 t1 i pids=() decoded=0 dropped=0 stored=0
    t0=$(now)
    for i in $(seq 0 $((c - 1))); do
      "$PH" replay "$CAPTURE" --to "$(flow_addr "collector-$i")" "${SEND_ARGS[@]}" >/dev/null 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    # what the collectors decoded, once they stopped decoding
    collected() {
      local i n=0
      for i in $(seq 0 $((c - 1))); do
        n=$((n + $(curl -s -H "Authorization: Bearer $DEMO_TOKEN" "http://$(cat "$WORK/collector-$i/data/api.addr")/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }')))
      done
      echo "$n"
    }
    local prev=-1
    while decoded=$(collected pharos_flow_records_total); [ "$decoded" != "$prev" ]; do prev=$decoded; sleep 0.5; done
    dropped=$(collected pharos_cluster_publish_dropped_total)
    # when the stream had acknowledged every decoded flow (the collectors' side)
    local tp
    for _ in $(seq 2400); do
      [ "$(( $(collected pharos_cluster_published_flows_total) + dropped ))" -ge "$decoded" ] && break
      sleep 0.25
    done
    tp=$(now)
    local kdrops=0 port
    for i in $(seq 0 $((c - 1))); do
      port=$(flow_addr "collector-$i"); port=${port##*:}
      kdrops=$((kdrops + $(udp_drops "$port") * 30))
    done
    # stored = what ClickHouse has once it stops growing
    local last=-1
    # t1: when the count last grew (polled every 0.25 s); done once it holds every decoded flow
    # and stops growing, or after 10 minutes
    for _ in $(seq 2400); do
      stored=$(ch_count)
      [ "$stored" != "$last" ] && t1=$(now)
      [ "$stored" = "$last" ] && [ "$stored" -ge "$decoded" ] && break
      last=$stored; sleep 0.25
    done
    t1=${t1:-$(now)}
    echo "| $c collector(s), $a analyser(s) -> ClickHouse | $((CAP_FLOWS * c)) | $decoded | $stored | $(awk -v s=$((CAP_FLOWS * c)) -v r=$stored 'BEGIN{printf "%.2f %%", (s-r)*100/s}') | $(awk -v g=$stored -v a=$t0 -v b=$t1 'BEGIN{printf "%.0f", g/(b-a)}') | $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.1f", b-a}') | $(awk -v a=$t0 -v b=$tp 'BEGIN{printf "%.1f", b-a}') | $kdrops | $dropped |" >"$TOP/row-c$c-a$a"
  )
  ROWS+=("$(cat "$TOP/row-c$c-a$a")")
}

echo "== single node" >&2
single
for t in $TOPOLOGIES; do
  echo "== topology $t (collectors:analysers)" >&2
  topology "${t%:*}" "${t#*:}"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| topology | flows sent | decoded | stored | loss | end-to-end flows/s | seconds | in the stream after (s) | kernel drops (flows) | publish drops |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
[ "${KEEP:-0}" = 1 ] || rm -rf "$TOP"
