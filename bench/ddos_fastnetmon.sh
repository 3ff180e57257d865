#!/usr/bin/env bash
# DDoS detection side by side in one run: FastNetMon (Debian 1.2.4, NetFlow on loopback, as in
# shared/specs/peers-flow.md §5.4) against `pharos run` with `[detect]`, both fed the same NetFlow v5
# datagrams in one pass by bench/gen_attacks.py (each datagram sent to both ports in turn, at the
# capture's pace, flows stamped with the wall clock), same monitored /24, same per-host thresholds
# (5,000 pps, 50 Mbit/s, 3,000 flows/s; bench/fastnetmon/).
#
# Usage: bench/ddos_fastnetmon.sh
# Env:   PHAROS_BIN   use this pharos binary instead of building target/release/pharos
#        WINDOW_S / DELAY_S   Pharos [detect.ddos] window_s / delay_s (default 5 / 2, the defaults)
#        FNM_AVG      FastNetMon average_calculation_time (default 5, its default)
#        WORK         work directory (default: a fresh temp dir, removed at exit unless KEEP=1)
#        CACHE        directory where the generated capture is kept between runs (default $WORK)
#        FNM_PORT / PH_PORT   loopback UDP ports (default 19955 / 19956)
# Timing: the sender logs the wall-clock time of each attack's first datagram; FastNetMon's notify
# script and Pharos' [detect_hook] log `date +%s.%N` when they run. Delay = alarm - first datagram.
# Prints one table per run: attack, type, victim, FastNetMon (label, delay), Pharos (type, delay),
# which is earlier, plus false alarms (alarms on hosts that were not attacked).
# Needs root (apt-get install fastnetmon when missing, /var/log/fastnetmon_attacks).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
WINDOW_S=${WINDOW_S:-5}
DELAY_S=${DELAY_S:-2}
FNM_AVG=${FNM_AVG:-5}
FNM_PORT=${FNM_PORT:-19955}
PH_PORT=${PH_PORT:-19956}
WORK=${WORK:-$(mktemp -d /tmp/pharos-ddos-bench.XXXXXX)}
CACHE=${CACHE:-$WORK}
mkdir -p "$WORK" "$CACHE"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

need_pkg fastnetmon fastnetmon
pharos_bin

PCAP=$CACHE/attacks.pcap
if [ ! -s "$PCAP" ] || [ ! -s "$PCAP.truth.json" ] || [ bench/gen_attacks.py -nt "$PCAP" ]; then
  python3 bench/gen_attacks.py gen "$PCAP"
fi


# Offline ground truth: what `pharos detect` finds in the capture with the same configuration.
PH=$WORK/pharos; mkdir -p "$PH"
cp bench/fastnetmon/pharos-hook.sh "$PH/"
{
  cat bench/fastnetmon/pharos-detect.toml
  # still in [detect.ddos]: the file has no other table
  printf 'window = "%ss"\ndelay = "%ss"\n' "$WINDOW_S" "$DELAY_S"
} >"$PH/detect.toml"
echo "== offline: pharos detect (capture time as the clock)" >&2
"$PHAROS_BIN" detect "$PCAP" --config "$PH/detect.toml" >"$WORK/offline.txt" 2>"$WORK/offline.err" || true
sed 's/^/   /' "$WORK/offline.txt" "$WORK/offline.err" >&2

# FastNetMon
FNM=$WORK/fnm; mkdir -p "$FNM" /var/log/fastnetmon_attacks
echo 198.51.100.0/24 >"$FNM/networks_list"; : >"$FNM/networks_whitelist"
cp bench/fastnetmon/notify.sh "$FNM/"
sed -e "s|@DIR@|$FNM|g" -e "s|@PORT@|$FNM_PORT|g" -e "s|@AVG@|$FNM_AVG|g" -e "s|@PROM@|$((FNM_PORT + 1000))|g" \
  bench/fastnetmon/fastnetmon.conf >"$FNM/fastnetmon.conf"
fastnetmon --configuration_file "$FNM/fastnetmon.conf" --configuration_check >"$FNM/check.log" 2>&1 ||
  { cat "$FNM/check.log" >&2; exit 1; }
fastnetmon --configuration_file "$FNM/fastnetmon.conf" --log_to_console --disable_pid_logic >"$FNM/fastnetmon.log" 2>&1 &
PIDS+=($!); FNM_PID=$!
wait_udp_bound "$FNM_PORT"

# Pharos
cat >"$PH/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
[store]
data_dir = "$PH/data"
[log]
level = "warn"
[flow]
listen = ["127.0.0.1:$PH_PORT"]
$(cat "$PH/detect.toml")

[detect_hook]
command = "$PH/pharos-hook.sh"
timeout = "5s"
EOF
"$PHAROS_BIN" check-config "$PH/pharos.toml" >"$PH/check.log" 2>&1 || { cat "$PH/check.log" >&2; exit 1; }
"$PHAROS_BIN" run --config "$PH/pharos.toml" 2>"$PH/pharos.log" &
PIDS+=($!); PH_PID=$!
for _ in $(seq 1 600); do [ -s "$PH/data/api.addr" ] && break; sleep 0.05; done
wait_udp_bound "$PH_PORT"
sleep 1

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== replaying $(basename "$PCAP") to FastNetMon :$FNM_PORT and Pharos :$PH_PORT in one pass (load $LOAD0)" >&2
python3 bench/gen_attacks.py send "$PCAP" --to "127.0.0.1:$FNM_PORT" --to "127.0.0.1:$PH_PORT" --lead 2 \
  --log "$WORK/sent.json"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "   kernel drops: fastnetmon $(udp_drops "$FNM_PORT"), pharos $(udp_drops "$PH_PORT"); load after $LOAD1" >&2
sleep 5
kill -TERM "$PH_PID"; wait "$PH_PID" || true
kill -TERM "$FNM_PID" 2>/dev/null || true; wait "$FNM_PID" 2>/dev/null || true

echo
echo "FastNetMon $(dpkg-query -W -f '${Version}' fastnetmon 2>/dev/null) (average_calculation_time = $FNM_AVG) vs $("$PHAROS_BIN" --version) (window_s = $WINDOW_S, delay_s = $DELAY_S);" \
  "$(nproc) CPUs, load $LOAD0 before / $LOAD1 after"
python3 - "$PCAP.truth.json" "$WORK/sent.json" "$FNM" "$PH/alarms.log" <<'EOF'
import glob, json, os, re, sys
truth, sent, fnm, ph = sys.argv[1:]
truth = json.load(open(truth)); sent = json.load(open(sent))
fnm_ban = {}
if os.path.exists(f"{fnm}/alarms.log"):
    for line in open(f"{fnm}/alarms.log"):
        ts, action, ip, *_ = line.split()
        if action == "ban" and ip not in fnm_ban:
            det = open(f"{fnm}/details_{ip}_ban.txt").read() if os.path.exists(f"{fnm}/details_{ip}_ban.txt") else ""
            m = re.search(r"[Aa]ttack type:\s*(\S+)", det)
            fnm_ban[ip] = (float(ts), m.group(1) if m else "?")
ph_start = {}
if os.path.exists(ph):
    for line in open(ph):
        ts, phase, ev = line.split(" ", 2)
        if phase != "started":
            continue
        ev = json.loads(ev)
        d = ev["notification"]["ietf-i2nsf-monitoring-interface:i2nsf-nsf-event"]["i2nsf-nsf-detection-ddos"]
        ip = d["attack-dst-ip"][0]
        typ = d.get("attack-type", "?").split(":")[-1]
        ph_start.setdefault(ip, []).append((float(ts), typ, d.get("rule-name", "")))
print(f"thresholds per host: {truth['thresholds']['pps']} pps, {truth['thresholds']['mbps']} Mbit/s, "
      f"{truth['thresholds']['flows']} flows/s; {truth['datagrams']} datagrams, {truth['flows']} flows, "
      f"{truth['duration_s']} s, network {truth['network']}")
print("| attack | traffic | victim | rate | FastNetMon | FNM delay | Pharos | Pharos delay | earlier |")
print("|---|---|---|---|---|---|---|---|---|")
victims = set()
for a in truth["attacks"]:
    ip = f"198.51.100.{a['victim']}"; victims.add(ip)
    t0 = sent["first_datagram_sent"].get(a["name"])
    f = fnm_ban.get(ip); p = sorted(ph_start.get(ip, []))
    fd = f"{f[0] - t0:.2f} s" if f and t0 else "-"
    pd = f"{p[0][0] - t0:.2f} s" if p and t0 else "-"
    if f and p:
        e = "Pharos" if p[0][0] < f[0] else "FastNetMon"
        e += f" by {abs(p[0][0] - f[0]):.2f} s"
    else:
        e = "Pharos only" if p else ("FastNetMon only" if f else "neither")
    rate = f"{a['pps']:,} pps {a['pps'] * a['size'] * 8 / 1e6:.0f} Mbit/s"
    print(f"| {a['name']} | {a['kind']} | {ip} | {rate} | {'yes ' + f[1] if f else 'no'} | {fd} | "
          f"{'yes ' + p[0][1] if p else 'no'} | {pd} | {e} |")
fa_f = sorted(set(fnm_ban) - victims); fa_p = sorted(set(ph_start) - victims)
print(f"false alarms (hosts not attacked): FastNetMon {fa_f or 'none'}, Pharos {fa_p or 'none'}; "
      f"Pharos attacks started: {sum(len(v) for v in ph_start.values())}, FastNetMon bans: {len(fnm_ban)}")
EOF
