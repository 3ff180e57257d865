#!/usr/bin/env bash
# Performance of the web console (issue 19): first page load and time to interactive with
# 100,000 stored events and 10 M flows, the events list's first page, a top query over the 10 M
# flows in the flows page, and the overview during a paced ingest of 1 M flows/s. Measured in
# Debian's headless chromium, driven through chromedriver by the example
# crates/pharos/examples/console_load.rs (see its header for what is measured and how).
#
# Steps:
#   1. a NetFlow v5 capture of FLOWS flows over SPAN seconds of flow time (bench/gen_flows.py,
#      cached in WORK under a name keyed by its parameters and the generator's hash);
#   2. a copy with every export time shifted so that the flows end now (the generator's time
#      base is 2025-11-24; `pharos flows import` keeps the export times), imported into a fresh
#      data directory with `pharos flows import` (the default SPAN of 3000 s keeps all the flows
#      inside the pages' default "last hour" for 10 minutes after the import);
#   3. `pharos run` on that directory (release binary; API on a free loopback port, request rate
#      limits off so the bench's own traffic is not throttled, [detect.ddos] networks 10.0.0.0/8
#      and 198.18.0.0/15, which the overview's traffic chart splits in and out by);
#   4. EVENTS I2NSF notifications pushed through POST /api/v1/push in NDJSON batches of 5,000:
#      generic logs 45 %, intrusions 25 %, system alarms 19 %, web attacks 10 %, DDoS 1 % (ended),
#      severities info..critical, event times spread over the last 20 hours, 28 NSFs; plus
#      ONGOING DDoS attacks started in the last 30 minutes (the overview's attack table);
#   5. the browser measurements without ingest (`console_load --mode static`, RUNS runs, each in
#      a fresh browser with an empty cache);
#   6. `pharos replay` of the (unshifted) capture at INGEST_FLOWS flows/s, looped (as
#      bench/flow_ingest.sh does; the collector corrects the exporter's clock, so the flows land
#      now), and after WARMUP seconds the overview measurements under ingest
#      (`console_load --mode ingest`, RUNS cold loads, an alarm pushed after each and timed until
#      the open overview shows it, the overview's API calls timed a round every 5 s, among them
#      the live traffic view GET /api/v1/traffic with what it says it missed, #live-status
#      watched) for at least INGEST_SECONDS; the flows received per second meanwhile come from
#      /metrics, and the batches the live view missed from
#      pharos_flow_stage_dropped_batches_total{consumer="traffic"}.
#
# Usage: bench/console.sh
# Env:   PHAROS_BIN     the pharos binary (default: build target/release/pharos)
#        CLIENT_BIN     the console_load example (default: cargo build -p pharos --example
#                       console_load, debug profile: it only drives the browser)
#        FLOWS          flows in the capture (default 10,000,000)
#        SPAN           seconds of flow time (default 3000)
#        EVENTS         events pushed (default 100,000)
#        ONGOING        ongoing DDoS attacks pushed (default 5)
#        RUNS           runs per measurement (default 5)
#        STATIC         0 skips the measurements without ingest (step 5; default 1)
#        INGEST_FLOWS   paced ingest, flows/s (default 1,000,000; 0 skips the ingest part)
#        INGEST_SECONDS at least this long under ingest (default 60)
#        WARMUP         seconds of ingest before measuring (default 10)
#        WORK           work directory (default /tmp/pharos-console-bench; the capture is kept
#                       there, the data directory is removed at exit unless KEEP=1)
#        FLOW_PORT      loopback UDP port of the collector (default 19998)
#        TLS            1: serve the API and the console over HTTPS ([api.tls], a self-signed
#                       certificate made for the run; HTTP/2 when the browser negotiates it);
#                       default 0: plain HTTP/1.1, as `pharos run` without [api.tls]
# Prints: the machine, the data, then the client's Markdown tables (median, min, max).
# Every loop is bounded; every process started here is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
FLOWS=${FLOWS:-10000000}
SPAN=${SPAN:-3000}
EVENTS=${EVENTS:-100000}
ONGOING=${ONGOING:-5}
RUNS=${RUNS:-5}
STATIC=${STATIC:-1}
INGEST_FLOWS=${INGEST_FLOWS:-1000000}
INGEST_SECONDS=${INGEST_SECONDS:-60}
WARMUP=${WARMUP:-10}
FLOW_PORT=${FLOW_PORT:-19998}
WORK=${WORK:-/tmp/pharos-console-bench}
TLS=${TLS:-0}
PER_DATAGRAM=30
mkdir -p "$WORK"
DATA=$WORK/data
PH_PID=""
RP_PID=""
CL_PID=""
cleanup() {
  for p in $CL_PID $RP_PID; do kill "$p" 2>/dev/null || true; done
  # Browsers the client started (each chromedriver in its own process group) if it was killed.
  for f in "$WORK"/wd/*/driver.pid; do
    [ -s "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  if [ -n "$PH_PID" ] && kill -0 "$PH_PID" 2>/dev/null; then
    kill -TERM "$PH_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$PH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PH_PID" 2>/dev/null || true
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$DATA" "$WORK/shifted.pcap" "$WORK/wd"
}
trap cleanup EXIT
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

need_pkg chromium chromium
need_pkg chromedriver chromium-driver
pharos_bin
if [ -z "${CLIENT_BIN:-}" ]; then
  echo "== cargo build -p pharos --example console_load" >&2
  nice cargo build -q -p pharos --example console_load
  CLIENT_BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/examples/console_load
fi

# ---- 1. capture (cached) ---------------------------------------------------------------------
GEN_HASH=$(sha1sum bench/gen_flows.py | cut -c1-12)
PCAP=$WORK/flows-v5-n$FLOWS-span$SPAN-$GEN_HASH.pcap
if [ ! -s "$PCAP" ]; then
  echo "== generating $FLOWS NetFlow v5 flows over $SPAN s" >&2
  nice python3 bench/gen_flows.py "$PCAP.tmp" --flows "$FLOWS" --version 5 --span "$SPAN" --jobs "$(nproc)" >&2
  mv "$PCAP.tmp" "$PCAP"
fi
CAP_FLOWS=$(( (FLOWS + PER_DATAGRAM - 1) / PER_DATAGRAM * PER_DATAGRAM ))

# ---- 2. shifted copy, imported ---------------------------------------------------------------
# Adds DELTA seconds to the export time (unix_secs) of every NetFlow v5/v9 datagram and to the
# pcap record times. The generator writes Ethernet/IPv4 (20-byte header)/UDP frames.
cat >"$WORK/shift.py" <<'EOF'
import struct, sys
src, dst, delta = sys.argv[1], sys.argv[2], int(sys.argv[3])
buf = bytearray(open(src, "rb").read())
first = last = None
off, n = 24, 0
while off + 16 <= len(buf):
    ts, _, incl, _ = struct.unpack_from("<IIII", buf, off)
    struct.pack_into("<I", buf, off, ts + delta)
    p = off + 16 + 14 + 20 + 8  # the NetFlow header
    ver = struct.unpack_from("!H", buf, p)[0]
    if ver in (5, 9):
        secs = struct.unpack_from("!I", buf, p + 8)[0] + delta
        struct.pack_into("!I", buf, p + 8, secs)
        first = secs if first is None else first
        last = secs
    off += 16 + incl
    n += 1
open(dst, "wb").write(buf)
print(f"{n} datagrams, export times {first}..{last}")
EOF
# The generator's time base (gen_flows.py T0) plus SPAN: the last export time; shifted to now.
T0=$(sed -n 's/^T0 = \([0-9_]*\).*/\1/p' bench/gen_flows.py | tr -d _)
rm -rf "$DATA"; mkdir -p "$DATA"
t0=$EPOCHREALTIME
DELTA=$(( $(date +%s) - T0 - ${SPAN%.*} ))
echo "== shifting the capture's export times by $DELTA s: $(python3 "$WORK/shift.py" "$PCAP" "$WORK/shifted.pcap" "$DELTA")" >&2
echo "== pharos flows import" >&2
t1=$EPOCHREALTIME
"$PHAROS_BIN" flows import "$WORK/shifted.pcap" --data-dir "$DATA" >&2
IMPORT_S=$(since "$t1")
IMPORTED_AT=$(date -u +%H:%M:%S)
rm -f "$WORK/shifted.pcap"
echo "== imported in $IMPORT_S s (shift + import $(since "$t0") s), flows end at $IMPORTED_AT UTC" >&2

# ---- 3. pharos run ---------------------------------------------------------------------------
cat >"$WORK/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
public_metrics = true
rate_per_second = 0
push_rate_per_second = 0
[store]
data_dir = "$DATA"
[log]
level = "warn"
[flow]
listen = ["127.0.0.1:$FLOW_PORT"]
[syslog]
enabled = false
[detect.ddos]
networks = ["10.0.0.0/8", "198.18.0.0/15"]
EOF
SCHEME=http
if [ "$TLS" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
  printf '[api.tls]\ncert = "%s"\nkey = "%s"\n' "$WORK/cert.pem" "$WORK/key.pem" >>"$WORK/pharos.toml"
  SCHEME=https
fi
"$PHAROS_BIN" run --config "$WORK/pharos.toml" >"$WORK/pharos.out" 2>"$WORK/pharos.log" &
PH_PID=$!
for _ in $(seq 1 600); do [ -s "$DATA/api.addr" ] && break; sleep 0.05; done
[ -s "$DATA/api.addr" ] || { echo "pharos run did not start: $(tail -5 "$WORK/pharos.log")" >&2; exit 1; }
BASE="$SCHEME://$(head -1 "$DATA/api.addr")"
TOKEN=""
for _ in $(seq 1 100); do TOKEN=$(grep -o 'phr_[0-9a-f]*' "$WORK/pharos.out" | head -1 || true); [ -n "$TOKEN" ] && break; sleep 0.05; done
[ -n "$TOKEN" ] || { echo "no admin token printed by the first start" >&2; exit 1; }
code=$(curl -sk -o /dev/null -w '%{http_code}' "$BASE/ui/login")
[ "$code" = 200 ] || { echo "$PHAROS_BIN serves no console (GET /ui/login: $code)" >&2; exit 1; }
metric() { curl -sk "$BASE/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'; }

# ---- 4. events -------------------------------------------------------------------------------
cat >"$WORK/push_events.py" <<'EOF'
"""Pushes N I2NSF notifications to BASE/api/v1/push in NDJSON batches; prints the time taken."""
import json, random, sys, time, urllib.error, urllib.request

import ssl
base, token, n, ongoing = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
CTX = ssl._create_unverified_context()  # the bench's self-signed certificate (TLS=1)
rng = random.Random(20261207)
now = time.time()
M = "ietf-i2nsf-monitoring-interface:"
ENV = "pharos-i2nsf-extensions:envelope"
FWS = [f"fw-{i:02d}" for i in range(12)]
IDS = [f"ids-{i}" for i in range(6)]
WEB = [f"web-{i}" for i in range(8)]
SCRUB = ["scrubber-1", "scrubber-2"]
SEV = ["info", "low", "middle", "high", "critical"]


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def inside():
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def outside():
    return rng.choice([f"203.0.113.{rng.randrange(1, 255)}", f"100.{64 + rng.randrange(64)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"])


def ddos(t, end):
    d = {"attack-type": rng.choice(["syn-flood", "udp-flood", "icmpv4-flood", "ack-flood", "http-flood"]),
         "start-time": iso(t - rng.randrange(60, 1800) if end else t),
         "attack-src-ip": [outside() for _ in range(rng.randrange(1, 4))],
         "attack-dst-ip": [inside()], "rule-name": "anti-ddos",
         "attack-rate": str(rng.randrange(50_000, 5_000_000)),
         "attack-throughput": str(rng.randrange(10**8, 4 * 10**10))}
    if end:
        d["end-time"] = iso(t)
    return {M + "i2nsf-nsf-event": {"nsf-name": rng.choice(SCRUB), "i2nsf-nsf-detection-ddos": d,
                                    ENV: {"severity": rng.choice(["high", "critical"]), "event-time": iso(t)}}}


def doc():
    t = now - rng.random() * 20 * 3600
    sev = rng.choices(SEV, weights=[40, 25, 20, 10, 5])[0]
    env = {"severity": sev, "event-time": iso(t)}
    r = rng.random()
    if r < 0.45:
        nsf = rng.choice(FWS + WEB)
        line = f"<13>1 {iso(t)} {nsf} app {rng.randrange(1, 65535)} - - session {rng.randrange(10**6)} from {outside()} to {inside()} closed"
        env["raw"] = line
        return {M + "i2nsf-log": {"nsf-name": nsf, "pharos-i2nsf-extensions:generic-log": {"format": "rfc5424", "app-name": "app"}, ENV: env}}
    if r < 0.70:
        return {M + "i2nsf-nsf-event": {"nsf-name": rng.choice(IDS), "i2nsf-nsf-detection-intrusion": {
            "attack-type": rng.choice(["brute-force", "buffer-overflow"]), "src-ip": outside(), "dst-ip": inside(),
            "dst-port": rng.choice([22, 80, 443, 3389, 445]), "protocol": "tcp", "rule-name": f"ids-rule-{rng.randrange(200)}"}, ENV: env}}
    if r < 0.89:
        cat = rng.choice(["cpu-alarm", "memory-alarm", "disk-alarm"])
        return {M + "i2nsf-event": {"nsf-name": rng.choice(FWS + IDS), "message": f"{cat} on the appliance",
                                    "i2nsf-system-detection-alarm": {"alarm-category": cat, "usage": rng.randrange(81, 100), "threshold": 80}, ENV: env}}
    if r < 0.99:
        return {M + "i2nsf-nsf-event": {"nsf-name": rng.choice(WEB), "i2nsf-nsf-detection-web-attack": {
            "attack-type": rng.choice(["xss", "csrf", "command-injection"]), "src-ip": outside(), "dst-ip": inside(),
            "dst-port": 443, "rule-name": f"waf-{rng.randrange(50)}"}, ENV: env}}
    return ddos(t, True)


def push(docs):
    body = "\n".join(json.dumps(d) for d in docs).encode()
    for attempt in range(10):
        req = urllib.request.Request(base + "/api/v1/push", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"})
        try:
            with urllib.request.urlopen(req, timeout=120, context=CTX) as r:
                v = json.load(r)
                assert v["stored"] == len(docs), v
                return
        except urllib.error.HTTPError as e:
            if e.code == 503 and attempt < 9:
                time.sleep(1)
                continue
            raise SystemExit(f"push refused: {e.code} {e.read()[:500]!r}")
    raise SystemExit("push: still overloaded after 10 attempts")


t0 = time.time()
left, batch = n, 5000
while left > 0:
    k = min(batch, left)
    push([doc() for _ in range(k)])
    left -= k
push([ddos(now - rng.randrange(60, 1800), False) for _ in range(ongoing)])
print(f"{n + ongoing} notifications pushed in {time.time() - t0:.1f} s")
EOF
echo "== pushing $EVENTS events and $ONGOING ongoing attacks" >&2
python3 "$WORK/push_events.py" "$BASE" "$TOKEN" "$EVENTS" "$ONGOING" >&2
STORED=0
for _ in $(seq 1 600); do
  STORED=$(curl -sk -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/overview" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"].get("messages_stored", 0))')
  [ "$STORED" -ge "$EVENTS" ] && break
  sleep 0.5
done
echo "== messages stored: $STORED" >&2

# ---- 5. without ingest -----------------------------------------------------------------------
MACHINE="$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(uname -r), $(chromium --version 2>/dev/null | head -1), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"
echo "== machine: $MACHINE" >&2
echo "== other processes using CPU: $(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 { printf "%s %s%%; ", $2, $1 }' | head -c 300)" >&2
LOAD_A=$(cut -d' ' -f1-3 /proc/loadavg)
STATIC_OUT="(no measurement without ingest: STATIC=0)"
if [ "$STATIC" != 0 ]; then
  echo "== static measurements ($RUNS runs), load average $LOAD_A" >&2
  STATIC_OUT=$("$CLIENT_BIN" --base "$BASE" --token "$TOKEN" --mode static --runs "$RUNS" --work "$WORK/wd" --json "$WORK/static.json" \
    --networks 10.0.0.0/8,198.18.0.0/15 --insecure "$TLS")
fi
LOAD_B=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 6. under ingest -------------------------------------------------------------------------
INGEST_OUT=""
INGEST_LINE=""
if [ "$INGEST_FLOWS" -gt 0 ]; then
  DPS=$(( INGEST_FLOWS / PER_DATAGRAM ))
  # Enough loops of the capture for the warm-up, the measurement and 10 minutes of margin; the
  # sender is stopped when the client is done.
  LOOPS=$(( (INGEST_FLOWS * (WARMUP + INGEST_SECONDS + 600) + CAP_FLOWS - 1) / CAP_FLOWS ))
  echo "== ingest: pharos replay at $DPS datagrams/s ($INGEST_FLOWS flows/s), up to $LOOPS loops" >&2
  "$PHAROS_BIN" replay "$PCAP" --to "127.0.0.1:$FLOW_PORT" --rate "$DPS" --loop "$LOOPS" >"$WORK/replay.log" 2>&1 &
  RP_PID=$!
  sleep "$WARMUP"
  c0=$(metric pharos_flow_records_consumed_total); tA=$EPOCHREALTIME
  LOAD_C=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== measuring under ingest (at least $INGEST_SECONDS s), load average $LOAD_C" >&2
  INGEST_OUT=$("$CLIENT_BIN" --base "$BASE" --token "$TOKEN" --mode ingest --runs "$RUNS" --seconds "$INGEST_SECONDS" \
    --work "$WORK/wd" --json "$WORK/ingest.json" --networks 10.0.0.0/8,198.18.0.0/15 --insecure "$TLS")
  c1=$(metric pharos_flow_records_consumed_total); tB=$EPOCHREALTIME
  LOAD_D=$(cut -d' ' -f1-3 /proc/loadavg)
  kill "$RP_PID" 2>/dev/null || true; wait "$RP_PID" 2>/dev/null || true; RP_PID=""
  RATE=$(awk -v a="$c0" -v b="$c1" -v x="$tA" -v y="$tB" 'BEGIN { printf "%.0f", (b - a) / (y - x) }')
  KDROPS=$(udp_drops "$FLOW_PORT")
  SPILLED=$(metric pharos_flow_store_spilled_flows_total)
  DROPPED=$(( $(metric pharos_flow_store_dropped_total) + $(metric pharos_flow_dropped_total) ))
  LIVE_MISSED=$(curl -sk -H "Authorization: Bearer $TOKEN" "$BASE/metrics" | awk '/^pharos_flow_stage_dropped_batches_total\{consumer="traffic"\}/ { s += $2 } END { printf "%.0f", s }')
  INGEST_LINE="while measuring: $((c1 - c0)) flows received in $(awk -v x="$tA" -v y="$tB" 'BEGIN { printf "%.0f", y - x }') s = $RATE flows/s (pharos_flow_records_consumed_total); kernel drops $KDROPS datagrams, archive spilled $SPILLED flows, dropped $DROPPED; live traffic view missed $LIVE_MISSED batches since the start; load average $LOAD_C at the start, $LOAD_D at the end"
  echo "== $INGEST_LINE" >&2
fi

echo
echo "Pharos web console, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+uncommitted'), binary $PHAROS_BIN ($(date -u -r "$PHAROS_BIN" +%Y-%m-%dT%H:%MZ))"
echo "Machine: $MACHINE"
echo "Data: $STORED messages stored; $FLOWS flows imported ($IMPORT_S s) with flow times over $SPAN s ending $IMPORTED_AT UTC"
echo "Load average: $LOAD_A before the static runs, $LOAD_B after"
printf '%s\n' "$STATIC_OUT"
if [ -n "$INGEST_OUT" ]; then
  echo
  echo "Under ingest: pharos replay of the capture at $INGEST_FLOWS flows/s; $INGEST_LINE"
  printf '%s\n' "$INGEST_OUT"
fi
