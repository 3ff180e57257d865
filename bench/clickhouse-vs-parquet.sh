#!/usr/bin/env bash
# The four standard flow queries (docs/PERFORMANCE.md, "Flow queries against nfdump") over the same
# flows in the Parquet archive and in ClickHouse, in one run (issue 20: "ClickHouse query times for
# the four standard queries over 100 M flows against the Parquet engine").
#
# One generated NetFlow v5 capture (bench/gen_flows.py, cached) is loaded by `pharos flows import`
# into a data directory and by `pharos flows import --engine clickhouse` into a clickhouse-server
# started here (its own directory and config, loopback, killed at exit; Debian's 18.16 or
# $PHAROS_CLICKHOUSE_SERVER), both timed; then each query runs as `pharos flows top ... --json`
# against each store, cold and warm, and the answers are compared (everything but `stats`).
#
# Usage: bench/clickhouse-vs-parquet.sh   (FLOWS=100000000 SPAN=3600 RUNS=3 COLD=1 by default)
# Env:   PHAROS_BIN  the pharos binary (default: build target/release/pharos)
#        FLOWS       flows in the capture (30 per datagram)
#        SPAN        seconds of flow time the capture covers
#        RUNS        warm runs per query and engine (the median is reported)
#        COLD        1: one first run per query and engine after `echo 3 > /proc/sys/vm/drop_caches`
#                    (root only; skipped with a note otherwise)
#        JOBS        processes generating the capture
#        WORK        work directory (default /tmp/pharos-ch-bench): the capture is cached there; the
#                    two stores are removed at exit unless KEEP=1
#        REUSE       1: keep stores left by a KEEP=1 run when they hold every flow (no reload)
#        CH_PORT     HTTP port of the server (default 18123; TCP port CH_PORT + 1)
#        MERGE_WAIT  seconds to wait after the load for ClickHouse's background merges (default 600)
# Prints: the stores (flows, bytes on disk, load time), then the queries (cold first run, warm
# median, ratio ClickHouse / Parquet, same answer).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
FLOWS=${FLOWS:-100000000}
SPAN=${SPAN:-3600}
RUNS=${RUNS:-3}
COLD=${COLD:-1}
JOBS=${JOBS:-2}
WORK=${WORK:-/tmp/pharos-ch-bench}
CH_PORT=${CH_PORT:-18123}
MERGE_WAIT=${MERGE_WAIT:-600}
mkdir -p "$WORK"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
PQ_DIR=$WORK/parquet
CH_DIR=$WORK/clickhouse
CH_CFG=$WORK/clickhouse.toml
CH_PID=""
cleanup() {
  if [ -n "$CH_PID" ]; then kill "$CH_PID" 2>/dev/null || true; wait "$CH_PID" 2>/dev/null || true; fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$PQ_DIR" "$CH_DIR"
}
trap cleanup EXIT

pharos_bin
CH_SERVER=${PHAROS_CLICKHOUSE_SERVER:-$(command -v clickhouse-server || echo /usr/bin/clickhouse-server)}
[ -x "$CH_SERVER" ] || { echo "no clickhouse-server (apt-get install clickhouse-server, or PHAROS_CLICKHOUSE_SERVER)" >&2; exit 1; }
CH_ARGS=()
[ "$(basename "$CH_SERVER")" = clickhouse ] && CH_ARGS=(server)
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---- 1. capture (cached; the same file as bench/flow_query.sh's for the same parameters) -------
GEN_HASH=$(sha1sum bench/gen_flows.py | cut -c1-12)
PCAP=$WORK/flows-v5-n$FLOWS-span$SPAN-$GEN_HASH.pcap
SENT=$(( (FLOWS + 29) / 30 * 30 ))
if [ ! -s "$PCAP" ]; then
  echo "== generating $FLOWS NetFlow v5 flows over $SPAN s of flow time (jobs $JOBS)" >&2
  t0=$EPOCHREALTIME
  python3 bench/gen_flows.py "$PCAP.tmp" --flows "$FLOWS" --version 5 --span "$SPAN" --jobs "$JOBS" >&2
  mv "$PCAP.tmp" "$PCAP"
  GEN_NOTE="generated in $(since "$t0") s"
else
  GEN_NOTE="cached"
fi
echo "== capture $PCAP: $SENT flows, $(stat -c %s "$PCAP") bytes ($GEN_NOTE)" >&2

# ---- 2. the ClickHouse server -------------------------------------------------------------------
mkdir -p "$CH_DIR"
cat >"$CH_DIR/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$CH_DIR/server.log</log><errorlog>$CH_DIR/server.err.log</errorlog></logger>
  <http_port>$CH_PORT</http_port>
  <tcp_port>$((CH_PORT + 1))</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$CH_DIR/data/</path>
  <tmp_path>$CH_DIR/tmp/</tmp_path>
  <user_files_path>$CH_DIR/user_files/</user_files_path>
  <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
  <mark_cache_size>5368709120</mark_cache_size>
  <max_concurrent_queries>20</max_concurrent_queries>
  <timezone>UTC</timezone>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <profiles><default></default></profiles>
  <quotas><default></default></quotas>
</yandex>
EOF
printf '[clickhouse]\nurl = "http://127.0.0.1:%s"\ndatabase = "pharos"\ntimeout_secs = 600\n[store]\ndata_dir = "%s"\n' \
  "$CH_PORT" "$WORK/unused" >"$CH_CFG"
"$CH_SERVER" "${CH_ARGS[@]}" --config-file="$CH_DIR/config.xml" >"$CH_DIR/stdout.log" 2>&1 &
CH_PID=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$CH_PORT/ping" >/dev/null 2>&1 && break
  kill -0 "$CH_PID" 2>/dev/null || { echo "clickhouse-server exited:" >&2; tail -20 "$CH_DIR/stdout.log" "$CH_DIR/server.err.log" >&2; exit 1; }
  sleep 0.1
done
ch_sql() { curl -sf "http://127.0.0.1:$CH_PORT/" --data-binary "$1" || echo n/a; }
CH_VERSION=$(ch_sql 'SELECT version()')
echo "== clickhouse-server $CH_VERSION on 127.0.0.1:$CH_PORT (pid $CH_PID)" >&2

# ---- 3. load both -------------------------------------------------------------------------------
total_flows() { # pharos args...: total flows of `flows top proto` (every flow)
  "$PHAROS_BIN" flows top proto --by flows -n 256 --json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["flows"])'
}
sum_sizes() { find "$@" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }'; }

PQ_LOAD=reused
if [ "${REUSE:-0}" = 1 ] && [ -d "$PQ_DIR/flows" ] && [ "$(total_flows --data-dir "$PQ_DIR" 2>/dev/null)" = "$SENT" ]; then
  echo "== Parquet: reusing $PQ_DIR" >&2
else
  rm -rf "$PQ_DIR"; mkdir -p "$PQ_DIR"
  echo "== pharos flows import (Parquet)" >&2
  t0=$EPOCHREALTIME
  "$PHAROS_BIN" flows import "$PCAP" --data-dir "$PQ_DIR" >&2
  PQ_LOAD=$(since "$t0")
fi
PQ_GOT=$(total_flows --data-dir "$PQ_DIR")
PQ_BYTES=$(sum_sizes "$PQ_DIR/flows")

CH_LOAD=reused
if [ "${REUSE:-0}" = 1 ] && [ "$(total_flows -c "$CH_CFG" --engine clickhouse 2>/dev/null)" = "$SENT" ]; then
  echo "== ClickHouse: reusing $CH_DIR" >&2
else
  ch_sql 'DROP DATABASE IF EXISTS pharos' || true
  echo "== pharos flows import --engine clickhouse (inserts of 1,000,000 flows, two in flight)" >&2
  t0=$EPOCHREALTIME
  "$PHAROS_BIN" flows import "$PCAP" --engine clickhouse -c "$CH_CFG" --segment-flows 1000000 >&2
  CH_LOAD=$(since "$t0")
fi
# Background merges of the inserted parts: wait for them (as a store some time after its load).
t0=$EPOCHREALTIME
for _ in $(seq 1 "$MERGE_WAIT"); do
  [ "$(ch_sql "SELECT count() FROM system.merges WHERE database = 'pharos'")" = 0 ] && break
  sleep 1
done
MERGE_S=$(since "$t0")
CH_PARTS=$(ch_sql "SELECT count() FROM system.parts WHERE database = 'pharos' AND table = 'flows' AND active")
CH_GOT=$(total_flows -c "$CH_CFG" --engine clickhouse)
CH_FLOW_BYTES=$(ch_sql "SELECT sum(bytes) FROM system.parts WHERE database = 'pharos' AND table = 'flows' AND active")
# Active parts only: the parts a merge replaced stay on disk until old_parts_lifetime (8 min).
CH_BYTES=$(ch_sql "SELECT sum(bytes) FROM system.parts WHERE database = 'pharos' AND active")
echo "== ClickHouse: $CH_GOT flows, $CH_PARTS active parts of flows after ${MERGE_S} s of merges; flows table $CH_FLOW_BYTES bytes, database $CH_BYTES bytes" >&2

# ---- 4. queries --------------------------------------------------------------------------------
W_FROM=$(( 1764000000 + SPAN / 2 / 60 * 60 ))
W_TO=$(( W_FROM + 300 ))
PH_FROM=$(date -u -d "@$W_FROM" +%Y-%m-%dT%H:%M:%SZ)
PH_TO=$(date -u -d "@$W_TO" +%Y-%m-%dT%H:%M:%SZ)
QUERIES=(
  "a|top-10 dstip by bytes|top dstip --by bytes -n 10"
  "b|top-10 srcport by bytes, proto udp|top srcport --by bytes -n 10 proto udp"
  "c|top-10 dstip by flows, flags S and not flags A|top dstip --by flows -n 10 flags S and not flags A"
  "d|top-10 dstip by bytes, 5-min window|top dstip --by bytes -n 10 --from $PH_FROM --to $PH_TO"
)
can_drop=0
if [ "$COLD" = 1 ]; then
  if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then can_drop=1
  else echo "!! cannot drop the page cache (not root?): warm runs only" >&2; fi
fi
run_once() { # outfile cmd...: wall-clock seconds, or fail
  local out=$1 t0; shift
  t0=$EPOCHREALTIME
  if "$@" >"$out" 2>"$out.err"; then awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'
  else echo fail; echo "!! failed: $* ($(head -c 300 "$out.err"))" >&2; fi
}
cold_once() { if [ "$can_drop" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; run_once "$@"; else echo n/a; fi; }
median() { printf '%s\n' "$@" | sort -n | awk '!/^[0-9.]+$/ { bad = 1 } { v[NR] = $1 } END { if (bad || !NR) print "fail"; else print (NR % 2) ? v[(NR + 1) / 2] : sprintf("%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v c="$1" -v p="$2" 'BEGIN { if (c + 0 > 0 && p + 0 > 0) printf "%.1fx", c / p; else print "n/a" }'; }
same() { # parquet.json clickhouse.json -> yes / NO: ...
  python3 - "$1" "$2" <<'EOF'
import json, sys
p, c = (json.load(open(f)) for f in sys.argv[1:3])
for d in (p, c):
    d.pop("stats", None)
if p == c:
    print(f"yes ({len(p['rows'])} rows, {p['total']['flows']} flows selected, {p['distinct']} distinct)")
else:
    diff = [k for k in p if p.get(k) != c.get(k)]
    print("NO: " + ", ".join(diff))
EOF
}
ROWS=()
for q in "${QUERIES[@]}"; do
  IFS='|' read -r id label args <<<"$q"
  read -ra a <<<"$args"
  pq_cmd=("$PHAROS_BIN" flows "${a[0]}" --json --data-dir "$PQ_DIR" "${a[@]:1}")
  ch_cmd=("$PHAROS_BIN" flows "${a[0]}" --json -c "$CH_CFG" --engine clickhouse "${a[@]:1}")
  echo "== query $id: $label" >&2
  pq_cold=$(cold_once "$WORK/pq-$id.json" "${pq_cmd[@]}")
  ch_cold=$(cold_once "$WORK/ch-$id.json" "${ch_cmd[@]}")
  pq_ts=(); ch_ts=()
  for _ in $(seq 1 "$RUNS"); do
    pq_ts+=("$(run_once "$WORK/pq-$id.json" "${pq_cmd[@]}")")
    ch_ts+=("$(run_once "$WORK/ch-$id.json" "${ch_cmd[@]}")")
  done
  pq_warm=$(median "${pq_ts[@]}"); ch_warm=$(median "${ch_ts[@]}")
  echo "   parquet: cold $pq_cold s, warm ${pq_ts[*]} s; clickhouse: cold $ch_cold s, warm ${ch_ts[*]} s" >&2
  agree=$(same "$WORK/pq-$id.json" "$WORK/ch-$id.json" 2>&1 | tail -1)
  ROWS+=("| ($id) $label | $pq_cold | $ch_cold | $(ratio "$ch_cold" "$pq_cold") | $pq_warm | $ch_warm | **$(ratio "$ch_warm" "$pq_warm")** | $agree |")
done

bpf() { awk -v b="$1" -v n="$2" 'BEGIN { if (b + 0 > 0 && n + 0 > 0) printf "%.1f", b / n; else print "n/a" }'; }
echo
echo "NetFlow v5 capture: $SENT flows over $SPAN s of flow time ($GEN_NOTE); $(nproc) CPUs; ClickHouse $CH_VERSION; load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "5-minute window: --from $PH_FROM --to $PH_TO"
echo
echo "| store | flows | bytes on disk | bytes/flow | time to load |"
echo "|---|---|---|---|---|"
echo "| Parquet (\`pharos flows import\`) | $PQ_GOT | $PQ_BYTES | $(bpf "$PQ_BYTES" "$PQ_GOT") | $PQ_LOAD s |"
echo "| ClickHouse (\`pharos flows import --engine clickhouse\`), flows table | $CH_GOT | $CH_FLOW_BYTES | $(bpf "$CH_FLOW_BYTES" "$CH_GOT") | $CH_LOAD s (then ${MERGE_S} s of merges; $CH_PARTS parts) |"
echo "| ClickHouse, whole database (flows, rollups, ledger; active parts) | | $CH_BYTES | $(bpf "$CH_BYTES" "$CH_GOT") | |"
echo
cold_note=$([ "$can_drop" = 1 ] && echo "first run after drop_caches" || echo "not measured")
echo "Seconds, process start to exit; cold = $cold_note; warm = median of $RUNS runs; ratio = ClickHouse / Parquet (above 1: Parquet is faster)"
echo "| query | Parquet cold | ClickHouse cold | ratio cold | Parquet warm | ClickHouse warm | ratio warm | same answer |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
