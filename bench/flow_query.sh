#!/usr/bin/env bash
# Flow queries side by side in one run: nfdump (Debian 1.7.1) against `pharos flows`, on the same
# generated NetFlow capture of 10 million flows stored by nfcapd (LZ4) and by `pharos flows import`.
#
# Usage: bench/flow_query.sh     (FLOWS=10000000 SPAN=3600 VERSION=5 RUNS=5 COLD=1 by default)
# Env:   PHAROS_BIN  use this pharos binary instead of building target/release/pharos; it is also the
#                    sender (`pharos replay`) that feeds nfcapd. Without `pharos flows` in it, only the
#                    nfdump half runs and the pharos columns say n/a.
#        FLOWS       flows in the generated capture (30 per datagram)
#        SPAN        seconds of flow time the capture covers (export times spread evenly)
#        VERSION     5 or 9 (NetFlow version of the generated capture)
#        RATE        datagrams per second when replaying into nfcapd (halved and retried on loss)
#        RUNS        warm runs per query and tool (the median is reported)
#        COLD        1: one extra first run per query and tool after `echo 3 > /proc/sys/vm/drop_caches`
#                    (needs root; skipped with a note otherwise); 0: warm runs only
#        JOBS        processes generating the capture (gen_flows.py --jobs; output independent of it)
#        WORK        work directory (default /tmp/pharos-flow-query). The capture is cached there under
#                    a name keyed by its parameters and the generator's hash; the two stores are
#                    rebuilt on every run and removed at exit unless KEEP=1.
#        NF_PORT     loopback UDP port of nfcapd (default 19997)
# Prints: store sizes (bytes per flow), then one table of the queries (cold first run, warm median,
# ratio nfdump/pharos, and whether both return the same top-10 keys, values and totals).
# Times are wall-clock seconds of the whole command (process start to exit) with machine-readable
# output (nfdump -o csv, pharos --json), the output the answers are compared on.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
FLOWS=${FLOWS:-10000000}
SPAN=${SPAN:-3600}
VERSION=${VERSION:-5}
RATE=${RATE:-20000}
RUNS=${RUNS:-5}
COLD=${COLD:-1}
JOBS=${JOBS:-2}
NF_PORT=${NF_PORT:-19997}
WORK=${WORK:-/tmp/pharos-flow-query}
export TZ=UTC # nfdump -t and its printed times are local time
mkdir -p "$WORK"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
NF_DIR=$WORK/nfcapd
PH_DIR=$WORK/pharos
NF_PID=""
cleanup() {
  [ -n "$NF_PID" ] && kill "$NF_PID" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$NF_DIR" "$PH_DIR"
}
trap cleanup EXIT

need_pkg nfcapd nfdump
pharos_bin
PHAROS_QUERIES=1
if ! "$PHAROS_BIN" flows top --help >/dev/null 2>&1; then
  PHAROS_QUERIES=0
  echo "!! $PHAROS_BIN has no 'flows top': running the nfdump half only" >&2
fi

# nfcapd's LZ4 switch: `-y` in 1.7.1, `-z=lz4` in later releases.
NF_LZ4=()
if nfcapd -h 2>&1 | grep -q -- '-z=lz4'; then NF_LZ4=(-z=lz4)
elif nfcapd -h 2>&1 | grep -qE -- '^-y[[:space:]].*LZ4'; then NF_LZ4=(-y)
else echo "!! this nfcapd has no LZ4 compression: storing uncompressed" >&2; fi

# ---- 1. capture (cached) ------------------------------------------------------------------------
GEN_HASH=$(sha1sum bench/gen_flows.py | cut -c1-12)
PCAP=$WORK/flows-v$VERSION-n$FLOWS-span$SPAN-$GEN_HASH.pcap
DATAGRAMS=$(( (FLOWS + 29) / 30 ))
SENT=$(( DATAGRAMS * 30 ))
if [ ! -s "$PCAP" ]; then
  echo "== generating $FLOWS NetFlow v$VERSION flows over $SPAN s of flow time (jobs $JOBS)" >&2
  t0=$EPOCHREALTIME
  python3 bench/gen_flows.py "$PCAP.tmp" --flows "$FLOWS" --version "$VERSION" --span "$SPAN" --jobs "$JOBS" >&2
  mv "$PCAP.tmp" "$PCAP"
  GEN_NOTE="generated in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
else
  GEN_NOTE="cached"
fi
echo "== capture $PCAP: $DATAGRAMS datagrams, $SENT flows, $(stat -c %s "$PCAP") bytes ($GEN_NOTE)" >&2

nf_flows() { nfdump -R "$NF_DIR" -I 2>/dev/null | sed -n 's/^Flows: \([0-9]*\)/\1/p'; }
sum_sizes() { find "$@" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }'; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---- 2a. nfcapd store: paced loopback replay, verified lossless ---------------------------------
rate=$RATE
for attempt in 1 2 3; do
  rm -rf "$NF_DIR" "$WORK/nfcapd.pid"; mkdir -p "$NF_DIR"
  t0=$EPOCHREALTIME
  nfcapd -D -b 127.0.0.1 -p "$NF_PORT" -w "$NF_DIR" -t 60 -B 4194304 "${NF_LZ4[@]}" -P "$WORK/nfcapd.pid" -I bench >/dev/null 2>&1
  wait_udp_bound "$NF_PORT"
  for _ in $(seq 1 100); do [ -s "$WORK/nfcapd.pid" ] && break; sleep 0.05; done # written after the bind
  NF_PID=$(cat "$WORK/nfcapd.pid")
  echo "== nfcapd ${NF_LZ4[*]:-(uncompressed)}: replaying at $rate datagrams/s" >&2
  "$PHAROS_BIN" replay "$PCAP" --to "127.0.0.1:$NF_PORT" --rate "$rate" >&2
  sleep 2
  kill "$NF_PID"; while kill -0 "$NF_PID" 2>/dev/null; do sleep 0.1; done; NF_PID=""
  NF_STORE_S=$(since "$t0")
  NF_GOT=$(nf_flows)
  [ "${NF_GOT:-0}" = "$SENT" ] && break
  echo "!! nfcapd stored ${NF_GOT:-0} of $SENT flows at $rate datagrams/s" >&2
  rate=$(( rate / 2 ))
done
[ "${NF_GOT:-0}" = "$SENT" ] || { echo "nfcapd lost flows at every rate; giving up" >&2; exit 1; }
NF_BYTES=$(sum_sizes "$NF_DIR")
echo "== nfcapd stored $NF_GOT flows: $NF_BYTES bytes in $(find "$NF_DIR" -type f | wc -l) files ($NF_STORE_S s incl. replay at $rate datagrams/s)" >&2

# ---- 2b. pharos store: flows import -----------------------------------------------------------
# Flow totals from a `pharos flows top proto` (all protocols) with the given arguments, as JSON rows.
PY=$WORK/flow_query_compare.py
cat >"$PY" <<'EOF'
"""Helpers of bench/flow_query.sh: parse nfdump -o csv stats and pharos --json top output, compare."""
import ipaddress, json, sys

def norm_key(v):
    if isinstance(v, (int, float)):
        return int(v)
    s = str(v).strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        a = ipaddress.ip_address(s)
        if a.version == 6 and a.ipv4_mapped:
            a = a.ipv4_mapped
        return str(a)
    except ValueError:
        return s

def nfdump_rows(path):
    """-> (rows [(key, flows, packets, bytes)], totals (flows, packets, bytes) or None)"""
    lines = [l.strip() for l in open(path) if l.strip()]
    rows, totals = [], None
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("ts,te,td,pr,val,"):
            hdr = l.split(",")
            i += 1
            while i < len(lines) and lines[i].count(",") >= len(hdr) - 1 and lines[i] != "Summary":
                d = dict(zip(hdr, lines[i].split(",")))
                pkt, byt = d.get("pkt", d.get("ipkt")), d.get("byt", d.get("ibyt"))
                rows.append((norm_key(d["val"]), int(d["fl"]), int(pkt), int(byt)))
                i += 1
            continue
        if l == "Summary" and i + 2 < len(lines) + 1:
            d = dict(zip(lines[i + 1].split(","), lines[i + 2].split(",")))
            totals = (int(d["flows"]), int(d["packets"]), int(d["bytes"]))
            i += 3
            continue
        i += 1
    return rows, totals

def pharos_json(path):
    doc = json.load(open(path))
    rows = doc
    totals = None
    if isinstance(doc, dict):
        for k in ("rows", "top", "results", "data"):
            if isinstance(doc.get(k), list):
                rows = doc[k]
                break
        t = doc.get("total") or doc.get("totals")
        if isinstance(t, dict) and "flows" in t:
            totals = (int(t["flows"]), int(t.get("packets", 0)), int(t.get("bytes", 0)))
    out = []
    for r in rows:
        key = r.get("key")
        if key is None:
            key = next(v for k, v in r.items() if k not in ("flows", "packets", "bytes", "rank"))
        out.append((norm_key(key), int(r["flows"]), int(r["packets"]), int(r["bytes"])))
    return out, totals

def compare(nf_path, ph_path, ph_total_path, order):
    """Prints 'yes' or 'NO: reason'. Ties at the last rank may legitimately pick different keys."""
    col = {"flows": 1, "packets": 2, "bytes": 3}[order]
    nf, nf_tot = nfdump_rows(nf_path)
    ph, ph_tot = pharos_json(ph_path)
    if ph_tot is None and ph_total_path:
        rows, _ = pharos_json(ph_total_path)
        ph_tot = tuple(sum(r[i] for r in rows) for i in (1, 2, 3))
    problems = []
    if len(nf) != len(ph):
        problems.append(f"{len(nf)} vs {len(ph)} rows")
    nv, pv = [r[col] for r in nf], [r[col] for r in ph]
    if nv != pv:
        problems.append(f"{order} by rank differ: nfdump {nv} pharos {pv}")
    last = nv[-1] if nv else None
    nk = {r[0] for r in nf if r[col] != last}
    pk = {r[0] for r in ph if r[col] != last}
    if nk != pk:
        problems.append(f"keys differ: only nfdump {sorted(map(str, nk - pk))} only pharos {sorted(map(str, pk - nk))}")
    pd = {r[0]: r for r in ph}
    for r in nf:
        if r[0] in pd and pd[r[0]] != r:
            problems.append(f"{r[0]}: nfdump (flows, packets, bytes) {r[1:]} pharos {pd[r[0]][1:]}")
    if nf_tot != ph_tot:
        problems.append(f"totals (flows, packets, bytes): nfdump {nf_tot} pharos {ph_tot}")
    ties = sum(1 for r in nf if r[col] == last)
    note = f" ({ties} of the top {len(nf)} tie at the last value)" if ties > 1 else ""
    print("yes" + note if not problems else "NO: " + "; ".join(problems))

def total_flows(path):
    rows, tot = pharos_json(path)
    print(tot[0] if tot else sum(r[1] for r in rows))

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    elif cmd == "total_flows":
        total_flows(sys.argv[2])
    elif cmd == "nf_top":
        rows, tot = nfdump_rows(sys.argv[2])
        print(" ".join(str(r[0]) for r in rows), "| totals", tot)
EOF

PH_GOT=n/a; PH_BYTES=""; PH_IMPORT_S=n/a
if [ "$PHAROS_QUERIES" = 1 ]; then
  rm -rf "$PH_DIR"; mkdir -p "$PH_DIR"
  echo "== pharos flows import" >&2
  t0=$EPOCHREALTIME
  "$PHAROS_BIN" flows import "$PCAP" --data-dir "$PH_DIR" >&2
  PH_IMPORT_S=$(since "$t0")
  "$PHAROS_BIN" flows top proto --by flows -n 256 --data-dir "$PH_DIR" --json >"$WORK/ph-total.json"
  PH_GOT=$(python3 "$PY" total_flows "$WORK/ph-total.json")
  PH_BYTES=$(sum_sizes "$PH_DIR/flows")
  echo "== pharos archived $PH_GOT flows: $PH_BYTES bytes in $(find "$PH_DIR/flows" -type f | wc -l) files (import $PH_IMPORT_S s)" >&2
  [ "$PH_GOT" = "$SENT" ] || echo "!! pharos archived $PH_GOT of $SENT flows" >&2
fi

# ---- 3. queries -------------------------------------------------------------------------------
# The 5-minute window: in the middle of the flow times (the generator's time base is 1764000000).
W_FROM=$(( 1764000000 + SPAN / 2 / 60 * 60 ))
W_TO=$(( W_FROM + 300 ))
NF_WIN="$(date -u -d "@$W_FROM" +%Y/%m/%d.%H:%M:%S)-$(date -u -d "@$W_TO" +%Y/%m/%d.%H:%M:%S)"
PH_FROM=$(date -u -d "@$W_FROM" +%Y-%m-%dT%H:%M:%SZ)
PH_TO=$(date -u -d "@$W_TO" +%Y-%m-%dT%H:%M:%SZ)

# id | label | order | nfdump arguments | pharos arguments (split at spaces; the filter words go last, as
# `pharos flows top` takes every word after the key that is not an option before it as the filter)
QUERIES=(
  "a|top-10 dstip by bytes|bytes|-s dstip/bytes -n 10|top dstip --by bytes -n 10"
  "b|top-10 srcport by bytes, proto udp|bytes|-s srcport/bytes -n 10 'proto udp'|top srcport --by bytes -n 10 proto udp"
  "c|top-10 dstip by flows, flags S and not flags A|flows|-s dstip/flows -n 10 'flags S and not flags A'|top dstip --by flows -n 10 flags S and not flags A"
  "d|top-10 dstip by bytes, 5-min window|bytes|-t $NF_WIN -s dstip/bytes -n 10|top dstip --by bytes -n 10 --from $PH_FROM --to $PH_TO"
)
can_drop=0
if [ "$COLD" = 1 ]; then
  if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then can_drop=1
  else echo "!! cannot drop the page cache (not root?): warm runs only" >&2; fi
fi
# Runs a command once with its output in $1; prints its wall-clock seconds, or "fail".
run_once() { # outfile cmd...
  local out=$1 t0; shift
  t0=$EPOCHREALTIME
  if "$@" >"$out" 2>"$out.err"; then awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'
  else echo fail; echo "!! failed: $* ($(head -c 300 "$out.err"))" >&2; fi
}
cold_once() { # outfile cmd...: the first run after dropping the page cache, or n/a
  if [ "$can_drop" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; run_once "$@"; else echo n/a; fi
}
median() { printf '%s\n' "$@" | sort -n | awk '!/^[0-9.]+$/ { bad = 1 } { v[NR] = $1 } END { if (bad || !NR) print "fail"; else print (NR % 2) ? v[(NR + 1) / 2] : sprintf("%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v n="$1" -v p="$2" 'BEGIN { if (n + 0 > 0 && p + 0 > 0) printf "%.1fx", n / p; else print "n/a" }'; }
goal() { # nf_warm ph_warm ph_cold -> goal verdict
  awk -v n="$1" -v p="$2" 'BEGIN { if (!(p + 0 > 0)) { print "n/a"; exit } r = (n / p >= 2) ? "2x yes" : "2x NO"; s = (p < 1) ? "<1s yes" : "<1s NO"; print r ", " s }'
}

ROWS=()
for q in "${QUERIES[@]}"; do
  IFS='|' read -r id label order nfargs phargs <<<"$q"
  echo "== query $id: $label" >&2
  eval "nfa=($nfargs)"
  nf_cmd=(nfdump -R "$NF_DIR" -o csv "${nfa[@]}")
  ph_cmd=()
  if [ "$PHAROS_QUERIES" = 1 ]; then
    read -ra pha <<<"$phargs"
    ph_cmd=("$PHAROS_BIN" flows "${pha[0]}" --data-dir "$PH_DIR" --json "${pha[@]:1}")
  fi
  # Cold runs first, then the warm runs alternate between the two tools, so that a change in the
  # machine's load during the run affects both alike.
  nf_cold=$(cold_once "$WORK/nf-$id.csv" "${nf_cmd[@]}"); ph_cold=n/a; nf_ts=(); ph_ts=()
  [ ${#ph_cmd[@]} = 0 ] || ph_cold=$(cold_once "$WORK/ph-$id.json" "${ph_cmd[@]}")
  for _ in $(seq 1 "$RUNS"); do
    nf_ts+=("$(run_once "$WORK/nf-$id.csv" "${nf_cmd[@]}")")
    [ ${#ph_cmd[@]} = 0 ] || ph_ts+=("$(run_once "$WORK/ph-$id.json" "${ph_cmd[@]}")")
  done
  nf_warm=$(median "${nf_ts[@]}")
  echo "   nfdump $id: cold $nf_cold s, warm ${nf_ts[*]} s" >&2
  echo "   nfdump top: $(python3 "$PY" nf_top "$WORK/nf-$id.csv")" >&2
  ph_warm=n/a; agree="n/a (no pharos flows)"
  if [ ${#ph_cmd[@]} != 0 ]; then
    ph_warm=$(median "${ph_ts[@]}")
    echo "   pharos $id: cold $ph_cold s, warm ${ph_ts[*]} s" >&2
    # Totals of the same selection: all protocols of it (top proto), unless --json carries totals.
    pht=("${pha[@]}"); pht[1]=proto; for i in "${!pht[@]}"; do [ "${pht[$i]}" = 10 ] && [ "${pht[$((i-1))]}" = -n ] && pht[$i]=256; done
    "$PHAROS_BIN" flows "${pht[0]}" --data-dir "$PH_DIR" --json "${pht[@]:1}" >"$WORK/ph-$id-total.json" 2>/dev/null || true
    if [ "$ph_warm" = fail ]; then agree="NO: pharos failed ($(head -c 200 "$WORK/ph-$id.json.err" | tr '\n' ' '))"
    else agree=$(python3 "$PY" compare "$WORK/nf-$id.csv" "$WORK/ph-$id.json" "$WORK/ph-$id-total.json" "$order" 2>&1 | tail -1); fi
  fi
  ROWS+=("| ($id) $label | $nf_cold | $ph_cold | $(ratio "$nf_cold" "$ph_cold") | $nf_warm | $ph_warm | $(ratio "$nf_warm" "$ph_warm") | $(goal "$nf_warm" "$ph_warm") | $agree |")
done

bpf() { awk -v b="$1" -v n="$2" 'BEGIN { if (b + 0 > 0 && n + 0 > 0) printf "%.1f", b / n; else print "n/a" }'; }
echo
echo "NetFlow v$VERSION capture: $SENT flows over $SPAN s of flow time ($GEN_NOTE); $(nproc) CPUs; $(nfdump -V 2>&1 | head -1); load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "5-minute window: nfdump -t $NF_WIN, pharos --from $PH_FROM --to $PH_TO"
echo
echo "| store | flows | bytes on disk | bytes/flow | time to store |"
echo "|---|---|---|---|---|"
echo "| nfcapd ${NF_LZ4[*]:-uncompressed} (paced replay at $rate datagrams/s) | $NF_GOT | $NF_BYTES | $(bpf "$NF_BYTES" "$NF_GOT") | $NF_STORE_S s |"
echo "| pharos flows import | $PH_GOT | ${PH_BYTES:-n/a} | $(bpf "${PH_BYTES:-0}" "$PH_GOT") | $PH_IMPORT_S s |"
echo
cold_note=$([ "$can_drop" = 1 ] && echo "first run after drop_caches" || echo "not measured")
echo "Seconds; cold = $cold_note; warm = median of $RUNS runs; ratio = nfdump / pharos"
echo "| query | nfdump cold | pharos cold | ratio cold | nfdump warm | pharos warm | ratio warm | goals (warm) | same answer |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
