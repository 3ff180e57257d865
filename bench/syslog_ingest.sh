#!/usr/bin/env bash
# End-to-end syslog ingest through the real daemon: N vendor lines sent over one TCP connection
# (LF framing) to a release `pharos run`, counted when a later query finds them in the message
# store, not when a stage consumed them. The lines are our own samples (testdata/vendor-logs:
# every format) and, when ../shared is present, every input line of the labelled dev set, repeated
# up to N. Prints lines/s stored, the time, the process CPU, and what the store holds by outcome.
#
# Usage: bench/syslog_ingest.sh        (N=200000; PHAROS_BIN=... to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
source bench/lib.sh
pharos_bin
N=${N:-200000}
WORK=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

python3 - "$N" "$WORK/lines.log" <<'EOF'
import json, os, sys, glob
n, out = int(sys.argv[1]), sys.argv[2]
lines = []
for p in sorted(glob.glob("testdata/vendor-logs/*.jsonl")):
    for l in open(p):
        if l.strip():
            lines.append(json.loads(l)["line"])
corpus = os.path.join(os.environ.get("PHAROS_SHARED", "../shared"), "corpora/vendor-logs/elastic-pipeline-tests")
for root, _, files in os.walk(corpus):
    for f in sorted(files):
        if f.startswith("test-") and f.endswith(".log") and "-expected" not in f:
            lines += [l.rstrip("\n") for l in open(os.path.join(root, f), errors="replace") if l.strip()]
lines = [l for l in lines if "\n" not in l and "\r" not in l]
with open(out, "w") as o:
    for i in range(n):
        o.write(lines[i % len(lines)] + "\n")
print(f"{len(lines)} distinct lines, {n} sent", file=sys.stderr)
EOF

cat >"$WORK/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
public_metrics = true
[store]
data_dir = "$WORK/data"
[log]
level = "warn"
[flow]
enabled = false
[syslog]
udp = ""
tcp = "127.0.0.1:0"
EOF
"$PHAROS_BIN" run --config "$WORK/pharos.toml" >"$WORK/stdout" 2>"$WORK/pharos.log" &
PID=$!
for _ in $(seq 1 600); do [ -s "$WORK/data/syslog.addr" ] && [ -s "$WORK/data/api.addr" ] && break; sleep 0.05; done
TCP=$(awk '$1 == "tcp" { print $2 }' "$WORK/data/syslog.addr")
BASE="http://$(cat "$WORK/data/api.addr")"
metric() { curl -s "$BASE/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'; }
cpu_s() { awk '{ printf "%.1f", ($14 + $15) / 100 }' /proc/"$PID"/stat; }

t0=$(date +%s.%N)
python3 - "${TCP%:*}" "${TCP##*:}" "$WORK/lines.log" <<'EOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        s.sendall(b)
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
EOF
sent=$(date +%s.%N)
while :; do
  stored=$(metric pharos_syslog_stored_total)
  [ "$stored" -ge "$N" ] && break
  [ "$(echo "$(date +%s.%N) - $t0 > 600" | bc)" = 1 ] && { echo "timeout: $stored of $N stored" >&2; exit 1; }
  sleep 0.2
done
t1=$(date +%s.%N)
cpu=$(cpu_s)
outcomes=$(curl -s "$BASE/metrics" | awk '/^pharos_syslog_format_lines_total/ { split($1, a, "outcome=\""); o = substr(a[2], 1, index(a[2], "\"") - 1); n[o] += $2 } END { for (o in n) printf "%s %d  ", o, n[o] }')
kill -TERM "$PID"; wait "$PID" || true; PID=""
# what a later query finds: the stored messages, by kind, and how many keep their addresses
found=$(python3 - "$WORK/data/messages.db" <<'EOF2'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
total = db.execute("SELECT count(*) FROM messages").fetchone()[0]
with_addr = db.execute("SELECT count(DISTINCT message_id) FROM message_addrs").fetchone()[0]
print(f"{total} messages stored, {with_addr} with an indexed address")
EOF2
)
el=$(echo "$t1 - $t0" | bc)
echo "sent $N lines in $(echo "$sent - $t0" | bc) s; all stored after $el s: $(echo "$N / $el" | bc) lines/s; pharos CPU $cpu s"
echo "store: $found"
echo "outcomes: $outcomes"
