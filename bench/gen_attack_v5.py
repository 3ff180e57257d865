#!/usr/bin/env python3
"""NetFlow v5 capture of three floods on three victims over background traffic to a /24, and a
paced sender that replays it to several collectors at once with the flows stamped "now": the
generator and sender of bench/detect_side_by_side.sh (Pharos against FastNetMon).

Usage: gen_attack_v5.py gen OUT.pcap [--seed S]     writes OUT.pcap and OUT.pcap.truth.json
       gen_attack_v5.py send PCAP --to HOST:PORT [--to HOST:PORT ...] [--lead S] [--log SENT.json]

`gen` (deterministic for a seed; standard library only): 45 s of exports from one exporter
(192.0.2.10) towards the monitored 198.51.100.0/24.

- Background, exported 10 times a second, each flow lasting at most the 1 s before its export
  (1 s active timeout): about 300 flows/s to 100 servers .100-.199 (web, TLS, DNS, mail, SSH,
  NTP, ICMP; heavy-tailed packet counts), a busy host .5 at about 250 pps / 2.5 Mbit/s (half the
  benchmark's per-host thresholds), a little ordinary traffic to the three victims, and outgoing
  client traffic from the servers. No host but the victims reaches 70 % of a threshold in any
  second (checked here; the busiest hosts' maxima are in the truth file).
- Three floods (ATTACKS), 20 s each, starting at different fractions of a second: every second
  of a flood is exported once, 20 ms after that second ends (records covering exactly that
  second, in as many 30-record datagrams as it takes, 0.5 ms apart), so the first datagram of a
  flood leaves 1.02 s after its first packet.

The truth file gives, per flood, the capture times (ms from the start) of its first packet and
its first datagram, its rates (pps, bit/s, flows/s) and the victim's background (so what a tool
measuring the victim's total should see), and the per-host background maxima.

`send`: replays the capture at its own pace, each datagram to every `--to` target back to back
(the same bytes; the order of the targets alternates from one datagram to the next, so neither
collector is systematically first), after shifting the capture to start `--lead` seconds from
now. The shift is a whole number of seconds, applied to the pcap times and to the v5 header's
unix_secs (sysUptime and the records' first/last stay), so the flows carry wall-clock times with
their sub-second phase intact. The log (JSON) records the shift and, per flood, the wall-clock
time just before its first datagram was sent and the wall-clock time of its first packet.
"""

import json
import random
import sys

from v5_replay import main, rec, write_pcap

T0 = 1_764_000_000  # capture start (unix seconds); `send` moves it to the wall clock
UPTIME0 = 86_400_000  # exporter sysUptime (ms) at T0
NET = (198, 51, 100)
DURATION_S = 45
EXPORT_LAG_MS = 20
THRESHOLDS = dict(pps=500, mbps=5, flows=300)  # the benchmark's per-host thresholds (lab config)

# name, the type a tool that names types exactly should give, victim host, start (ms from T0),
# length (s), packets/s, bytes per packet, flows per second (each flow one source for one second),
# distinct sources (None: spoofed, new ones every second), protocol, TCP flags, src / dst port
# (None: random per flow)
ATTACKS = [
    dict(name="syn", expect="syn-flood", victim=20, start_ms=5_300, length_s=20, pps=30_000, size=60, fps=2_000,
         sources=None, proto=6, flags=0x02, sport=None, dport=80),
    dict(name="ntp", expect="ntp-amp-flood", victim=30, start_ms=8_650, length_s=20, pps=20_000, size=468, fps=200,
         sources=200, proto=17, flags=0, sport=123, dport=None),
    dict(name="icmp", expect="icmpv4-flood", victim=40, start_ms=12_900, length_s=20, pps=15_000, size=84, fps=50,
         sources=50, proto=1, flags=0, sport=0, dport=0x0800),
]

# background services to the servers: proto, dst port, weight
SERVICES = [(6, 443, 0.45), (6, 80, 0.2), (17, 53, 0.15), (6, 25, 0.05), (6, 22, 0.05), (17, 123, 0.03),
            (6, 993, 0.04), (1, 0x0800, 0.03)]


class Load:
    """Per destination host and capture second: packets, bytes, flows (records spread evenly)."""

    def __init__(self):
        self.by = {}

    def add(self, host, first_ms, last_ms, pkts, octets):
        s0, s1 = first_ms // 1000, max(first_ms, last_ms - 1) // 1000
        n = s1 - s0 + 1
        for s in range(s0, s1 + 1):
            v = self.by.setdefault((host, s), [0.0, 0.0, 0])
            v[0] += pkts / n
            v[1] += octets / n
        self.by[(host, s0)][2] += 1

    def max_by_host(self):
        out = {}
        for (h, _), (p, b, f) in self.by.items():
            m = out.setdefault(h, [0.0, 0.0, 0])
            m[0], m[1], m[2] = max(m[0], p), max(m[1], b), max(m[2], f)
        return out


def client(rng):
    return (rng.choice([10, 100, 203]), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))


def background(rng, t_ms, n, load):
    """n flows exported at capture time t_ms (ms since T0), each within the second before it."""
    out = []
    up = UPTIME0 + t_ms
    for _ in range(n):
        r = rng.random()
        if r < 0.06:  # busy host .5: ~18 flows/s of 14 pkts x 1,250 B, about 250 pps / 2.5 Mbit/s
            pkts, size, dur = 14, 1250, 999
            dst, src = NET + (5,), client(rng)
            sport, dport, flags, proto = rng.randrange(1024, 65536), 443, 0x1B, 6
        elif r < 0.09:  # ordinary traffic of the victims: a web server, an NTP server, a host
            v = rng.choice([20, 30, 40])
            proto, dport = {20: (6, 80), 30: (17, 123), 40: (1, 0x0800)}[v]
            pkts = rng.randrange(1, 6)
            size = {6: 576, 17: 90, 1: 84}[proto]
            dur = rng.randrange(0, 1000)
            dst, src = NET + (v,), client(rng)
            sport = rng.randrange(1024, 65536) if proto != 1 else 0
            flags = 0x1B if proto == 6 else 0
        else:
            u = rng.random()
            acc = 0.0
            for proto, dport, w in SERVICES:
                acc += w
                if u < acc:
                    break
            pkts = max(1, min(int(rng.paretovariate(1.3)) * 2, 60))
            size = rng.choice([60, 120, 576, 1000, 1400, 1500]) if proto == 6 else rng.choice([80, 120, 300, 512])
            dur = rng.randrange(0, 1000)
            server = NET + (100 + rng.randrange(100),)
            flags = rng.choice([0x1B, 0x1B, 0x18, 0x10, 0x02, 0x11]) if proto == 6 else 0
            sport = rng.randrange(1024, 65536) if proto != 1 else 0
            if rng.random() < 0.2:  # outgoing: a server of the /24 as client
                src, dst = server, client(rng)
            else:
                src, dst = client(rng), server
        out.append(rec(src, dst, pkts, pkts * size, up - dur, up, sport, dport, flags, proto))
        if dst[:3] == NET:
            load.add(dst[3], t_ms - dur, t_ms, pkts, pkts * size)
    return out


def attack_second(rng, a, sec):
    """Records of flood `a` for its second `sec` (covering exactly that second)."""
    first_ms = a["start_ms"] + sec * 1000
    last_ms = first_ms + 999
    n = a["fps"]
    base, extra = divmod(a["pps"], n)
    out = []
    for j in range(n):
        pkts = base + (1 if j < extra else 0)
        if a["sources"] is None:  # spoofed: new sources every second, from 100.64.0.0/10
            k = sec * n + j
            src = (100, 64 + (k >> 16) % 64, (k >> 8) & 255, (k & 255) or 1)
        else:  # reflectors / bots in 203.0.113.0/24 and 198.18.0.0/15
            src = (203, 0, 113, 1 + j) if j < 200 else (198, 18, j >> 8, j & 255)
        sport = a["sport"] if a["sport"] is not None else rng.randrange(1024, 65536)
        dport = a["dport"] if a["dport"] is not None else rng.randrange(1024, 65536)
        out.append(rec(src, NET + (a["victim"],), pkts, pkts * a["size"], UPTIME0 + first_ms, UPTIME0 + last_ms,
                       sport, dport, a["flags"], a["proto"]))
    return out


def gen(out, seed):
    rng = random.Random(seed)
    load = Load()
    events = []  # (t_us, order, tag, records): tag None = background, else attack index
    for tick in range(DURATION_S * 10):
        t_ms = tick * 100 + 100
        events.append((t_ms * 1000, 0, None, background(rng, t_ms, 30, load)))
    for i, a in enumerate(ATTACKS):
        for s in range(a["length_s"]):
            recs = attack_second(rng, a, s)
            t_ms = a["start_ms"] + (s + 1) * 1000 + EXPORT_LAG_MS
            for k in range(0, len(recs), 30):
                # the datagrams of one export 0.5 ms apart (kept in ms resolution by the pcap usec)
                events.append((t_ms * 1000 + (k // 30) * 500, 1, i, recs[k:k + 30]))
    events.sort(key=lambda e: (e[0], e[1]))
    truth = []
    for a in ATTACKS:
        t = dict(a)
        t.update(first_packet_ms=a["start_ms"], first_datagram_us=None, datagrams=0, records=0,
                 bps=a["pps"] * a["size"] * 8, packets=a["pps"] * a["length_s"])
        truth.append(t)
    n = 0
    flows = 0
    with open(out, "wb") as f:
        for t_us, tag, count in write_pcap(f, ((t_us, tag, recs) for t_us, _, tag, recs in events), T0, UPTIME0):
            if tag is not None:
                t = truth[tag]
                if t["first_datagram_us"] is None:
                    t["first_datagram_us"] = t_us
                t["datagrams"] += 1
                t["records"] += count
            n += 1
            flows += count
    maxima = load.max_by_host()
    victims = {a["victim"] for a in ATTACKS}
    for t in truth:
        bg = [v for (h, s), v in load.by.items() if h == t["victim"]]
        t["victim_background_pps_mean"] = round(sum(v[0] for v in bg) / DURATION_S, 1)
        t["victim_background_bps_mean"] = round(sum(v[1] for v in bg) * 8 / DURATION_S)
    worst = max((h for h in maxima if h not in victims), key=lambda h: maxima[h][0] / THRESHOLDS["pps"])
    for h, (p, b, fl) in maxima.items():
        if h in victims:
            continue
        if p >= THRESHOLDS["pps"] * 0.7 or b * 8 >= THRESHOLDS["mbps"] * 1e6 * 0.7 or fl >= THRESHOLDS["flows"] * 0.7:
            sys.exit(f"background host .{h} too close to a threshold in some second: {p:.0f} pps, "
                     f"{b * 8 / 1e6:.2f} Mbit/s, {fl} flows/s")
    meta = dict(t0=T0, duration_s=DURATION_S, datagrams=n, flows=flows, network="198.51.100.0/24",
                thresholds=THRESHOLDS, export_lag_ms=EXPORT_LAG_MS, attacks=truth,
                background_max_per_second={f".{h}": dict(pps=round(p), mbps=round(b * 8 / 1e6, 2), flows=fl)
                                           for h, (p, b, fl) in sorted(maxima.items()) if h not in victims and
                                           (h == worst or h == 5)})
    with open(out + ".truth.json", "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{out}: {n} NetFlow v5 datagrams, {flows} flows, {DURATION_S} s, {len(ATTACKS)} floods", file=sys.stderr)


if __name__ == "__main__":
    main(__doc__, gen, default_seed=20261207)
