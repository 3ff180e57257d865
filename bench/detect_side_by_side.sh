#!/usr/bin/env bash
# Detection side by side with FastNetMon (issue 13, "Flow path at line rate"): FastNetMon Community
# (Debian, NetFlow on loopback as in shared/specs/peers-flow.md §5.4) and `pharos run` with
# `[detect]` get the SAME NetFlow v5 datagrams at the same moment: one sender
# (bench/gen_attack_v5.py send) sends each datagram to both UDP ports back to back (order
# alternating per datagram), at the capture's own pace, flows stamped with the wall clock.
# Capture (bench/gen_attack_v5.py gen, regenerated each run, deterministic): 45 s of background to
# 198.51.100.0/24 plus three 20 s floods on three victims: SYN flood (.20), NTP reflection (.30),
# ICMP flood (.40).
#
# Both at their defaults except the thresholds, which are the lab config's (peers-lab/fastnetmon.conf)
# and the same on both sides: per destination host 500 pps, 5 Mbit/s, 300 flows/s.
#   FastNetMon: threshold_pps / threshold_mbps / threshold_flows (totals per host; per-protocol
#     thresholds off, as in the lab config), average_calculation_time = 5, check_period = 1.
#   Pharos: [detect.ddos] thresholds.all = { pps = 500, bps = 5000000, fps = 300 } (`all`: every
#     flow to the host, what FastNetMon counts), every other class at its built-in limit; window_s,
#     delay_s, hold_s, update_interval_s at their defaults (5, 2, 30, 10).
# Alarms: FastNetMon's notify script and Pharos' [detect_hook] append `date +%s.%N` first thing.
# Delay = first alarm - wall time just before the flood's first datagram was sent (the flood's
# first packet is 1.02 s earlier: the records cover the second before their export).
#
# Usage: bench/detect_side_by_side.sh
# Needs (installs nothing): fastnetmon (Debian: `DEBIAN_FRONTEND=noninteractive apt-get install -y
#   fastnetmon`; if the packaged service started, `systemctl disable --now fastnetmon`; this script
#   runs its own instance with `disable_usage_report = on`, loopback only), root (FastNetMon writes
#   /var/log/fastnetmon_attacks, created here if missing and then removed), python3, curl, jq,
#   and target/release/pharos (`cargo build --release -p pharos`).
# Env: PHAROS_BIN (default target/release/pharos), FNM_PORT / PH_PORT loopback UDP ports (default
#   21955 / 21956), KEEP=1 keeps the scratch directory, RESULTS=FILE appends the run's figures as
#   one JSON line, LOAD_FLOWS=N also sends Pharos (only) N flows/s of NetFlow v9 background
#   (bench/gen_flows.py, 1 M varied flows looped, `pharos replay --rate`) from 5 s before the
#   attacks until they end, with 198.18.0.0/15 (30 % of that background, 131,072 addresses
#   that all get traffic) added to the monitored networks: alarm delays under ingest load, to
#   compare with a run without it.
# Output: one table per victim (type each tool named first, delays, ratio Pharos/FastNetMon,
# Pharos events per victim from the hook and from GET /api/v1/messages?kind=ddos, Pharos' rate at
# the first `updated` against the true rate), then the evidence lines.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
PHAROS_BIN=${PHAROS_BIN:-$REPO/target/release/pharos}
FNM_PORT=${FNM_PORT:-21955}
PH_PORT=${PH_PORT:-21956}

missing=()
for c in fastnetmon python3 curl jq; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
[ -x "$PHAROS_BIN" ] || missing+=("$PHAROS_BIN (cargo build --release -p pharos)")
[ "$(id -u)" -eq 0 ] || missing+=("root (FastNetMon writes /var/log/fastnetmon_attacks)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'missing: %s\n' "${missing[@]}" >&2
  echo 'install with: DEBIAN_FRONTEND=noninteractive apt-get install -y fastnetmon curl jq' >&2
  exit 2
fi
if pgrep -x fastnetmon >/dev/null; then
  echo "note: another fastnetmon is running (pid $(pgrep -x fastnetmon | tr '\n' ' ')): the packaged" \
    "service? (systemctl disable --now fastnetmon). Ours uses its own ports and files." >&2
fi

WORK=$(mktemp -d /tmp/pharos-side-by-side.XXXXXX)
PIDS=()
MADE_ATTACK_DIR=0
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "$MADE_ATTACK_DIR" = 1 ] && rm -rf /var/log/fastnetmon_attacks
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Stops process $1 with SIGTERM, waiting at most $2 seconds, then SIGKILL.
stop() { # pid seconds
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Kernel drops (the `drops` column of /proc/net/udp) of the socket bound to 127.0.0.1:PORT; unlike
# bench/lib.sh's, `?` when no socket is bound there (a tool that died is not a tool without drops).
udp_drops() { # port
  local hex; hex=$(printf '%04X' "$1")
  awk -v p="0100007F:$hex" '$2 == p { print $NF; found=1 } END { if (!found) print "?" }' /proc/net/udp
}

PCAP=$WORK/attacks.pcap
python3 bench/gen_attack_v5.py gen "$PCAP"
LOAD_FLOWS=${LOAD_FLOWS:-0}
LOAD_NETS=""
if [ "$LOAD_FLOWS" -gt 0 ]; then
  LOAD_PCAP=${LOAD_PCAP:-$WORK/load-v9.pcap}
  [ -s "$LOAD_PCAP" ] || nice python3 bench/gen_flows.py "$LOAD_PCAP" --flows 1000000 --version 9 --jobs "$(nproc)" >&2
  LOAD_NETS=', "198.18.0.0/15"'
fi

# ---- FastNetMon: the lab config (peers-lab/fastnetmon.conf) with its own dir, port, no API ----
FNM=$WORK/fnm; mkdir -p "$FNM"
if [ ! -d /var/log/fastnetmon_attacks ]; then mkdir -p /var/log/fastnetmon_attacks; MADE_ATTACK_DIR=1; fi
echo 198.51.100.0/24 >"$FNM/networks_list"; : >"$FNM/networks_whitelist"
cat >"$FNM/notify.sh" <<'EOF'
#!/bin/sh
# FastNetMon notify: $1 IP, $2 direction, $3 pps, $4 ban|unban|attack_details; details on stdin
# (they name the attack type). Appends "<date +%s.%N> <action> <ip> <direction> <pps>" first.
ts=$(date +%s.%N)
dir=$(dirname "$0")
echo "$ts $4 $1 $2 $3" >> "$dir/alarms.log"
cat > "$dir/details_$1_$4_$ts.txt"
exit 0
EOF
chmod +x "$FNM/notify.sh"
cat >"$FNM/fastnetmon.conf" <<EOF
logging_level = info
logging_local_syslog_logging = off
logging_remote_syslog_logging = off
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = on
process_incoming_traffic = on
process_outgoing_traffic = on
ban_details_records_count = 20
ban_time = 120
unban_only_if_attack_finished = on
networks_list_path = $FNM/networks_list
white_list_path = $FNM/networks_whitelist
check_period = 1
enable_connection_tracking = on
ban_for_pps = on
ban_for_bandwidth = on
ban_for_flows = on
threshold_pps = 500
threshold_mbps = 5
threshold_flows = 300
threshold_tcp_mbps = 100000
threshold_udp_mbps = 100000
threshold_icmp_mbps = 100000
threshold_tcp_pps = 100000
threshold_udp_pps = 100000
threshold_icmp_pps = 100000
ban_for_tcp_bandwidth = off
ban_for_udp_bandwidth = off
ban_for_icmp_bandwidth = off
ban_for_tcp_pps = off
ban_for_udp_pps = off
ban_for_icmp_pps = off
mirror_afpacket = off
mirror_afxdp = off
mirror_netmap = off
pcap = off
netflow = on
sflow = off
average_calculation_time = 5
speed_calculation_delay = 1
netflow_port = $FNM_PORT
netflow_host = 127.0.0.1
netflow_sampling_ratio = 1
notify_script_path = $FNM/notify.sh
collect_attack_pcap_dumps = off
redis_enabled = off
mongodb_enabled = off
exabgp = off
gobgp = off
influxdb = off
graphite = off
monitor_local_ip_addresses = off
monitor_openvz_vps_ip_addresses = off
pid_path = $FNM/fastnetmon.pid
cli_stats_file_path = $FNM/fastnetmon.dat
cli_stats_ipv6_file_path = $FNM/fastnetmon_ipv6.dat
enable_api = off
kafka_traffic_export = off
prometheus = on
prometheus_port = $((FNM_PORT + 1000))
prometheus_host = 127.0.0.1
sort_parameter = packets
max_ips_in_list = 7
EOF
fastnetmon --configuration_file "$FNM/fastnetmon.conf" --configuration_check >"$FNM/check.log" 2>&1 ||
  { cat "$FNM/check.log" >&2; exit 1; }
fastnetmon --configuration_file "$FNM/fastnetmon.conf" --log_to_console --disable_pid_logic \
  >"$FNM/fastnetmon.log" 2>&1 &
FNM_PID=$!; PIDS+=("$FNM_PID")
wait_udp_bound "$FNM_PORT"

# ---- Pharos: its own data dir and ports, [detect.ddos] with the same thresholds, the hook ----
PH=$WORK/pharos; mkdir -p "$PH"
cat >"$PH/hook.sh" <<'EOF'
#!/bin/sh
# Pharos [detect_hook]: appends "<date +%s.%N> <PHAROS_PHASE> <attack id> <attack-type> <attack-rate
# pps> <attack-throughput B/s> <rule-name>" to alarms.log, the envelope to events.ndjson.
ts=$(date +%s.%N)
dir=$(dirname "$0")
ev=$(cat)
printf '%s\n' "$ev" >> "$dir/events.ndjson"
line=$(printf '%s' "$ev" | jq -r '.notification["ietf-i2nsf-monitoring-interface:i2nsf-nsf-event"]["i2nsf-nsf-detection-ddos"]
  | "\(."attack-type" // "-" | sub(".*:"; "")) \(."attack-rate" // "-") \(."attack-throughput" // "-") \(."rule-name" // "-")"')
echo "$ts $PHAROS_PHASE $PHAROS_ATTACK_ID $line" >> "$dir/alarms.log"
exit 0
EOF
chmod +x "$PH/hook.sh"
cat >"$PH/pharos.toml" <<EOF
[api]
listen = "127.0.0.1:0"
[store]
data_dir = "$PH/data"
[log]
level = "warn"
[flow]
listen = ["127.0.0.1:$PH_PORT"]
[syslog]
enabled = false

[detect.ddos]
networks = ["198.51.100.0/24"$LOAD_NETS]
thresholds.all = { pps = 500, bps = 5000000, fps = 300 }

[detect_hook]
command = "$PH/hook.sh"
timeout = "5s"
EOF
"$PHAROS_BIN" check-config "$PH/pharos.toml" >"$PH/check.log" 2>&1 || { cat "$PH/check.log" >&2; exit 1; }
"$PHAROS_BIN" run --config "$PH/pharos.toml" >"$PH/stdout.log" 2>"$PH/pharos.log" &
PH_PID=$!; PIDS+=("$PH_PID")
for _ in $(seq 1 300); do [ -s "$PH/data/api.addr" ] && break; sleep 0.1; done
[ -s "$PH/data/api.addr" ] || { echo "pharos did not start" >&2; cat "$PH/pharos.log" >&2; exit 1; }
wait_udp_bound "$PH_PORT"
TOKEN=$(sed -n 's/^PHAROS_TOKEN=//p' "$PH/stdout.log" | head -1)
API=http://$(head -1 "$PH/data/api.addr")
sleep 1

# ---- the same datagrams to both, one sender ----
if [ "$LOAD_FLOWS" -gt 0 ]; then
  # 30 flows per datagram; enough loops for the whole attack capture (about 50 s) and the lead.
  "$PHAROS_BIN" replay "$LOAD_PCAP" --to "127.0.0.1:$PH_PORT" --rate $((LOAD_FLOWS / 30)) \
    --loop $(( (LOAD_FLOWS * 90 + 999999) / 1000000 )) >"$WORK/load.log" 2>&1 &
  LOAD_PID=$!; PIDS+=("$LOAD_PID")
  echo "== background load: $LOAD_FLOWS flows/s to Pharos" >&2
  sleep 5
fi
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== sending to FastNetMon 127.0.0.1:$FNM_PORT and Pharos 127.0.0.1:$PH_PORT (load $LOAD0)" >&2
timeout 120 python3 bench/gen_attack_v5.py send "$PCAP" --to "127.0.0.1:$FNM_PORT" --to "127.0.0.1:$PH_PORT" \
  --lead 2 --log "$WORK/sent.json"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$LOAD_FLOWS" -gt 0 ]; then
  LOAD_STATS=$(curl -s --max-time 5 -H "authorization: Bearer $TOKEN" "$API/metrics" |
    awk '/^pharos_flow_records_total/ { r += $2 } /^pharos_flow_kernel_drops_total/ { k += $2 }
         /^pharos_flow_dropped_total/ { d += $2 } END { printf "records %d, kernel drops %d, dropped %d", r, k, d }')
  stop "$LOAD_PID" 1
  echo "== background load sent: $(tail -1 "$WORK/load.log"); Pharos: $LOAD_STATS" >&2
fi
DROPS="fastnetmon $(udp_drops "$FNM_PORT"), pharos $(udp_drops "$PH_PORT")"
sleep 3
# Pharos' stored DDoS events, while it runs (the attacks are still going on for it: hold = 30 s)
curl -sf --max-time 10 -H "authorization: Bearer $TOKEN" "$API/api/v1/messages?kind=ddos&limit=1000" \
  >"$PH/messages.json" || echo '{"items":[]}' >"$PH/messages.json"
FNM_FLOWS=$(curl -s --max-time 5 "http://127.0.0.1:$((FNM_PORT + 1000))/metrics" | grep -E '^fastnetmon_netflow_v5_total_(packets|flows) ' | tr '\n' ' ' || true)
stop "$PH_PID" 20        # SIGTERM: the attacks going on end, the ends are stored and hooked
stop "$FNM_PID" 5

echo
echo "FastNetMon $(dpkg-query -W -f '${Version}' fastnetmon 2>/dev/null || echo '?') vs $("$PHAROS_BIN" --version);" \
  "$(nproc) CPUs, load $LOAD0 before / $LOAD1 after; kernel drops: $DROPS"
[ -n "$FNM_FLOWS" ] && echo "FastNetMon counters: $FNM_FLOWS"
python3 - "$PCAP.truth.json" "$WORK/sent.json" "$FNM" "$PH" "${RESULTS:-}" "$LOAD0" <<'EOF'
import json, os, re, sys
truth_f, sent_f, fnm, ph, results, load0 = sys.argv[1:]
truth = json.load(open(truth_f)); sent = json.load(open(sent_f))

fnm_alarms = []  # (ts, action, ip, pps, type)
if os.path.exists(f"{fnm}/alarms.log"):
    for line in open(f"{fnm}/alarms.log"):
        ts, action, ip, _direction, pps = line.split()[:5]
        det = f"{fnm}/details_{ip}_{action}_{ts}.txt"
        text = open(det).read() if os.path.exists(det) else ""
        m = re.search(r"[Aa]ttack type:\s*(\S+)", text)
        fnm_alarms.append((float(ts), action, ip, pps, m.group(1) if m else "?"))
ph_runs = []  # (ts, phase, id, type, rate, throughput, rule)
if os.path.exists(f"{ph}/alarms.log"):
    for line in open(f"{ph}/alarms.log"):
        ts, phase, aid, typ, rate, thr, rule = line.split()[:7]
        ph_runs.append((float(ts), phase, aid, typ, rate, thr, rule))
stored = {}
for it in json.load(open(f"{ph}/messages.json")).get("items", []):
    s = json.dumps(it)
    m = re.search(r'"attack-dst-ip": \["([0-9.]+)"', s)
    if m:
        stored.setdefault(m.group(1), []).append(it)

def pct(x, y):
    return f"{(x - y) / y * 100:+.1f} %"

rows = []
victims = set()
print(f"\nthresholds per host (both): {truth['thresholds']['pps']} pps, {truth['thresholds']['mbps']} Mbit/s, "
      f"{truth['thresholds']['flows']} flows/s; {truth['datagrams']} datagrams, {truth['flows']} flows, "
      f"{truth['duration_s']} s; sender at most {sent['max_late_s'] * 1000:.1f} ms behind pace")
print("| victim | flood (true rate) | FastNetMon first | FNM delay (from 1st packet) | Pharos first "
      "| Pharos delay (from 1st packet) | Pharos/FNM (from 1st packet) "
      "| Pharos events (hook started / ids / API) | Pharos rate at first update (vs true) |")
print("|---|---|---|---|---|---|---|---|---|")
for a in truth["attacks"]:
    ip = f"198.51.100.{a['victim']}"; victims.add(ip)
    t0 = sent["first_datagram_sent"][a["name"]]
    lead = t0 - sent["first_packet"][a["name"]]  # first packet -> first datagram (the export)
    f = next((x for x in fnm_alarms if x[2] == ip and x[1] == "ban"), None)
    runs = [r for r in ph_runs if r[2].startswith(f"ddos/{ip}/")]
    started = [r for r in runs if r[1] == "started"]
    first = runs[0] if runs else None
    upd = next((r for r in runs if r[1] == "updated"), None)
    ids = sorted({r[2] for r in runs})
    fd = f[0] - t0 if f else None
    pd = first[0] - t0 if first and first[1] == "started" else None
    ratio = pd / fd if fd and pd is not None and fd > 0 else None
    ratio_pkt = (pd + lead) / (fd + lead) if fd is not None and pd is not None else None
    rate = int(upd[4]) if upd and upd[4] != "-" else None
    thr = int(upd[5]) if upd and upd[5] != "-" else None
    row = dict(victim=ip, flood=a["name"], expect=a["expect"], true_pps=a["pps"], true_bps=a["bps"],
               fnm_type=f[4] if f else None, fnm_delay_s=fd, fnm_pps=f[3] if f else None,
               pharos_type=first[3] if first else None, pharos_first_phase=first[1] if first else None,
               pharos_delay_s=pd, ratio=ratio, first_packet_to_datagram_s=lead, ratio_from_packet=ratio_pkt, pharos_started=len(started), pharos_ids=len(ids),
               pharos_stored=len(stored.get(ip, [])), update_pps=rate, update_bps=thr * 8 if thr else None,
               update_after_s=(upd[0] - t0) if upd else None,
               started_pps=int(first[4]) if first and first[4] != "-" else None,
               first_rule=first[6] if first else None)
    rows.append(row)
    print(f"| {ip} | {a['name']}: {a['pps']:,} pps {a['bps'] / 1e6:.1f} Mbit/s | {row['fnm_type'] or 'none'} | "
          f"{f'{fd:.2f} s ({fd + lead:.2f} s)' if fd is not None else '-'} | {row['pharos_type'] or 'none'} | "
          f"{f'{pd:.2f} s ({pd + lead:.2f} s)' if pd is not None else '-'} | "
          f"{f'{ratio:.2f} ({ratio_pkt:.2f})' if ratio is not None else '-'} | "
          f"{len(started)} / {len(ids)} / {row['pharos_stored']} | "
          + (f"{rate:,} pps ({pct(rate, a['pps'])}), {thr * 8 / 1e6:.1f} Mbit/s ({pct(thr * 8, a['bps'])}), "
             f"{upd[0] - t0:.1f} s after" if rate and thr else "no update") + " |")
others_f = sorted({x[2] for x in fnm_alarms if x[1] == "ban"} - victims)
others_p = sorted({r[2].split("/")[1] for r in ph_runs} - victims)
print(f"alarms on hosts not attacked: FastNetMon {others_f or 'none'}, Pharos {others_p or 'none'}")
print("Pharos phases per attack id: " + "; ".join(
    f"{aid} " + ",".join(r[1] for r in ph_runs if r[2] == aid) for aid in sorted({r[2] for r in ph_runs})))
print("\nevidence: FastNetMon notify calls (ts action ip pps type)")
for x in fnm_alarms:
    print(f"  {x[0]:.3f} {x[1]} {x[2]} {x[3]} {x[4]}")
print("evidence: Pharos hook runs (ts phase id type pps B/s rule)")
for r in ph_runs:
    print("  " + f"{r[0]:.3f} " + " ".join(r[1:]))
print("first datagram sent: " + ", ".join(f"{k} {v:.3f}" for k, v in sent["first_datagram_sent"].items()))
if results:
    with open(results, "a") as out:
        out.write(json.dumps(dict(load=load0, rows=rows, others_fnm=others_f, others_pharos=others_p)) + "\n")
EOF
echo "== Pharos log (warnings):" && sed 's/^/   /' "$PH/pharos.log" | tail -20
