#!/usr/bin/env python3
"""NetFlow v5 capture with background traffic and DDoS attacks, and a paced sender, for the
DDoS detection benchmark against FastNetMon (bench/ddos_fastnetmon.sh).

Usage: gen_attacks.py gen OUT.pcap [--seed S]        writes OUT.pcap and OUT.pcap.truth.json
       gen_attacks.py send PCAP --to HOST:PORT [--to HOST:PORT ...] [--lead S] [--log SENT.json]

`gen`: 92 s of exports from 192.0.2.10 towards a monitored 198.51.100.0/24. Background: about 300
flows/s (web, TLS, DNS, mail, SSH) to 100 servers .100-.199 with heavy-tailed sizes, a busy host
.5 at about 2,500 pps / 20 Mbit/s (half the thresholds), and outgoing client traffic; exported
10 times a second, every flow lasting at most the second before its export (1 s active timeout).
Seven attacks, each against its own victim, 8 s long, 11 s apart (ATTACKS below), exported once a
second (flows covering the second before). The truth file lists each attack with the capture
time of its first datagram.

`send`: replays the capture at its own pace (datagram i at its capture time + a shift) sending
each datagram to every `--to` in turn (the same bytes, one pass), after shifting the capture to
start `--lead` seconds from now: the pcap times and the v5 header's unix_secs are moved by a whole
number of seconds, so the flows are stamped with the wall clock (Pharos places flows by their
own times; FastNetMon counts them when received). The log records the wall-clock send time of
each attack's first datagram. Standard library only.
"""

import json
import random
import sys

from v5_replay import main, rec, write_pcap

T0 = 1_764_000_000
UPTIME0 = 86_400_000
NET = (198, 51, 100)
DURATION = 92
THRESHOLD = dict(pps=5000, mbps=50, flows=3000)  # the benchmark's thresholds (documentation only)

# name, ddos type (Pharos / I2NSF), victim host, start offset s, length s, pps, bytes per packet,
# sources, flows per second, proto, tcp flags, src port (None: random), dst port (None: random)
ATTACKS = [
    dict(name="ntp-reflection", kind="UDP from 123 (NTP amplification)", victim=10, start=8, length=8, pps=20000,
         size=468, sources=40, fps=40, proto=17, flags=0, sport=123, dport=None),
    dict(name="syn-flood", kind="TCP SYN to 80", victim=20, start=19, length=8, pps=30000, size=60,
         sources=1000, fps=1000, proto=6, flags=0x02, sport=None, dport=80),
    dict(name="icmp-flood", kind="ICMP echo", victim=30, start=30, length=8, pps=15000, size=84, sources=50,
         fps=50, proto=1, flags=0, sport=0, dport=0x0800),
    dict(name="dns-reflection", kind="UDP from 53 (DNS amplification)", victim=40, start=41, length=8,
         pps=15000, size=1200, sources=200, fps=200, proto=17, flags=0, sport=53, dport=None),
    dict(name="memcached-reflection", kind="UDP from 11211", victim=50, start=52, length=8, pps=10000,
         size=1400, sources=30, fps=30, proto=17, flags=0, sport=11211, dport=None),
    dict(name="ack-flood", kind="TCP ACK to 443", victim=60, start=63, length=8, pps=30000, size=60,
         sources=1000, fps=1000, proto=6, flags=0x10, sport=None, dport=443),
    dict(name="ssdp-reflection", kind="UDP from 1900", victim=70, start=74, length=8, pps=12000, size=320,
         sources=100, fps=100, proto=17, flags=0, sport=1900, dport=None),
]

SERVICES = [(6, 443, 0.45), (6, 80, 0.2), (17, 53, 0.15), (6, 25, 0.05), (6, 22, 0.05), (17, 123, 0.03),
            (6, 993, 0.04), (1, 0x0800, 0.03)]


def background(rng, t_ms, n):
    """n flows ending at capture time t_ms (ms since T0)."""
    out = []
    up = UPTIME0 + t_ms
    for _ in range(n):
        r = rng.random()
        if r < 0.08:  # busy host .5: 2,500 pps, ~1000 B packets (about 25 flows/s x 100 pkts)
            pkts = 100
            out.append(rec((10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)), NET + (5,), pkts,
                           pkts * 1000, up - 999, up, rng.randrange(1024, 65536), 443, 0x1b, 6))
            continue
        u = rng.random()
        acc = 0
        for proto, port, w in SERVICES:
            acc += w
            if u < acc:
                break
        pkts = max(1, min(int(rng.paretovariate(1.3)) * 3, 400))
        size = rng.choice([60, 120, 576, 1000, 1400, 1500]) if proto == 6 else rng.choice([80, 120, 300, 512])
        dur = rng.randrange(0, 1000)
        client = (rng.choice([10, 100, 203]), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
        server = NET + (100 + rng.randrange(100),)
        flags = rng.choice([0x1b, 0x1b, 0x18, 0x10, 0x02, 0x11]) if proto == 6 else 0
        if rng.random() < 0.2:  # outgoing: a host of the /24 as client
            src, dst = NET + (100 + rng.randrange(100),), client
            sport, dport = (rng.randrange(1024, 65536), port) if proto != 1 else (0, port)
        else:
            src, dst = client, server
            sport, dport = (rng.randrange(1024, 65536), port) if proto != 1 else (0, port)
        out.append(rec(src, dst, pkts, pkts * size, up - dur, up, sport, dport, flags, proto))
    return out


def attack_flows(rng, a, sec, t_ms):
    """Flows of attack `a` for its second `sec`, covering the second before t_ms."""
    up = UPTIME0 + t_ms
    n = a["fps"]
    base, extra = divmod(a["pps"], n)
    out = []
    for j in range(n):
        pkts = base + (1 if j < extra else 0)
        if a["sources"] >= 1000:  # spoofed: new sources every second
            k = sec * n + j
            src = (100, 64 + (k >> 16) % 64, (k >> 8) & 255, k & 255 or 1)
        else:
            src = (203, 0, 113, 1 + j % 200) if j < 200 else (198, 18, j >> 8, j & 255)
        sport = a["sport"] if a["sport"] is not None else rng.randrange(1024, 65536)
        dport = a["dport"] if a["dport"] is not None else rng.randrange(1024, 65536)
        out.append(rec(src, NET + (a["victim"],), pkts, pkts * a["size"], up - 999, up, sport, dport, a["flags"],
                       a["proto"]))
    return out


def gen(out, seed):
    rng = random.Random(seed)
    events = []  # (t_ms, tag, records)
    for tick in range(DURATION * 10):
        t_ms = tick * 100 + 100
        events.append((t_ms, None, background(rng, t_ms, 30)))
    for i, a in enumerate(ATTACKS):
        for s in range(a["length"]):
            t_ms = (a["start"] + s + 1) * 1000 + 50 + 10 * i
            events.append((t_ms, i, attack_flows(rng, a, s, t_ms)))
    events.sort(key=lambda e: (e[0], -1 if e[1] is None else e[1]))
    truth = [dict(a, first_datagram_ms=None, datagrams=0, flows=0, packets=a["pps"] * a["length"]) for a in ATTACKS]
    n = 0
    flows = 0
    with open(out, "wb") as f:
        for t_us, tag, count in write_pcap(f, ((t_ms * 1000, tag, recs) for t_ms, tag, recs in events), T0, UPTIME0):
            if tag is not None:
                t = truth[tag]
                if t["first_datagram_ms"] is None:
                    t["first_datagram_ms"] = t_us // 1000
                t["datagrams"] += 1
                t["flows"] += count
            n += 1
            flows += count
    meta = dict(t0=T0, duration_s=DURATION, datagrams=n, flows=flows, network="198.51.100.0/24",
                thresholds=THRESHOLD, attacks=truth)
    with open(out + ".truth.json", "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{out}: {n} NetFlow v5 datagrams, {flows} flows, {DURATION} s, {len(ATTACKS)} attacks", file=sys.stderr)


if __name__ == "__main__":
    main(__doc__, gen, default_seed=20261202)
