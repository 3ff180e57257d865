#!/usr/bin/env python3
"""Writes a pcap of NetFlow v5 or v9 export datagrams with realistic variety, for the ingest benchmark.

Usage: gen_flows.py OUT.pcap [--flows N] [--version 5|9] [--seed S] [--span SECONDS] [--jobs N]

Every datagram carries 30 flows (v5's maximum; v9 uses the same count plus a template every
20 datagrams). Addresses come from several documentation/benchmark ranges and a private /8, ports
mix well-known services with ephemeral ports, protocols are ~70 % TCP, ~25 % UDP, ~5 % ICMP, packet
counts are heavy-tailed and bytes follow packet sizes of 40..1500. The exporter is 192.0.2.10:50000
sending to 192.0.2.1:2055; `pharos replay` ignores the destination. Standard library only.

Datagrams are exported 50 us apart by default (flow times then span about a minute); `--span S`
spreads the export times evenly over S seconds instead, so that flow times cover S seconds (the
query benchmark uses an hour, so a 5-minute window is selective). The capture is generated in chunks
of 20,000 datagrams, each with its own seeded generator (the first one seeded with --seed, so
captures of up to 600,000 flows are the same as before chunking), which `--jobs N` spreads over N
processes; the output does not depend on N.
"""

import argparse
import os
import random
import struct
from concurrent.futures import ProcessPoolExecutor

PER_DATAGRAM = 30
CHUNK = 20_000  # datagrams per independently seeded chunk
T0 = 1_764_000_000  # capture time base (2025-11-24)
UPTIME0 = 86_400_000
EXPORTER = bytes([192, 0, 2, 10])
COLLECTOR = bytes([192, 0, 2, 1])
WELL_KNOWN = [80, 443, 53, 123, 22, 25, 110, 143, 993, 3389, 8080, 8443, 5060, 1194, 161]
V9_TEMPLATE_ID = 256
# (type, length): IN_BYTES, IN_PKTS, PROTOCOL, SRC_TOS, TCP_FLAGS, L4_SRC_PORT, IPV4_SRC_ADDR, SRC_MASK,
# INPUT_SNMP, L4_DST_PORT, IPV4_DST_ADDR, DST_MASK, OUTPUT_SNMP, IPV4_NEXT_HOP, SRC_AS, DST_AS,
# LAST_SWITCHED, FIRST_SWITCHED
V9_FIELDS = [(1, 4), (2, 4), (4, 1), (5, 1), (6, 1), (7, 2), (8, 4), (9, 1), (10, 2), (11, 2), (12, 4), (13, 1),
             (14, 2), (15, 4), (16, 2), (17, 2), (21, 4), (22, 4)]


def rand_addr(rng):
    r = rng.random()
    if r < 0.4:
        return bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
    if r < 0.7:
        return bytes([198, 18 + rng.randrange(2), rng.randrange(256), rng.randrange(1, 255)])
    if r < 0.85:
        return bytes([100, 64 + rng.randrange(64), rng.randrange(256), rng.randrange(1, 255)])
    return bytes([203, 0, 113, rng.randrange(1, 255)])


def rand_flow(rng, uptime):
    u = rng.random()
    proto = 6 if u < 0.70 else (17 if u < 0.95 else 1)
    if proto == 1:
        sport, dport = 0, rng.choice([0x0800, 0x0000, 0x0303, 0x0b00])  # type<<8|code in dst port, as v5 does
        flags = 0
    else:
        if rng.random() < 0.5:
            sport, dport = rng.randrange(1024, 65536), rng.choice(WELL_KNOWN)
        else:
            sport, dport = rng.choice(WELL_KNOWN), rng.randrange(1024, 65536)
        flags = rng.choice([0x02, 0x12, 0x18, 0x1b, 0x10, 0x11, 0x04, 0x1f]) if proto == 6 else 0
    pkts = max(1, int(rng.paretovariate(1.2)))
    if pkts > 1_000_000:
        pkts = 1_000_000
    size = rng.choice([40, 52, 64, 76, 128, 256, 576, 1200, 1400, 1500])
    octets = min(pkts * size, 0xFFFFFFFF)
    dur = rng.randrange(0, 60_000)
    last = max(0, uptime - rng.randrange(0, 5_000))
    first = max(0, last - dur)
    return dict(src=rand_addr(rng), dst=rand_addr(rng), nh=bytes([192, 0, 2, rng.randrange(1, 255)]),
                inif=rng.randrange(1, 49), outif=rng.randrange(1, 49), pkts=pkts, octets=octets, first=first,
                last=last, sport=sport, dport=dport, flags=flags, proto=proto, tos=rng.choice([0, 0, 0, 0x28, 0xb8]),
                src_as=rng.choice([0, 64496, 64497, 64511, 65000 + rng.randrange(500)]),
                dst_as=rng.choice([0, 64496, 64500, 65535 - rng.randrange(30)]),
                src_mask=rng.choice([8, 16, 22, 24, 32]), dst_mask=rng.choice([8, 16, 24, 28]))


def v5_datagram(rng, seq, uptime, secs):
    out = [struct.pack("!HHIIIIBBH", 5, PER_DATAGRAM, uptime, secs, 0, seq, 0, 0, 0)]
    for _ in range(PER_DATAGRAM):
        f = rand_flow(rng, uptime)
        out.append(struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", f["src"], f["dst"], f["nh"], f["inif"], f["outif"],
                               f["pkts"], f["octets"], f["first"], f["last"], f["sport"], f["dport"], 0, f["flags"],
                               f["proto"], f["tos"], f["src_as"], f["dst_as"], f["src_mask"], f["dst_mask"], 0))
    return b"".join(out)


def v9_datagram(rng, seq, uptime, secs, with_template):
    sets = []
    count = PER_DATAGRAM
    if with_template:
        body = struct.pack("!HH", V9_TEMPLATE_ID, len(V9_FIELDS)) + b"".join(struct.pack("!HH", t, n) for t, n in V9_FIELDS)
        sets.append(struct.pack("!HH", 0, 4 + len(body)) + body)
        count += 1
    recs = []
    for _ in range(PER_DATAGRAM):
        f = rand_flow(rng, uptime)
        recs.append(struct.pack("!IIBBBH4sBHH4sBH4sHHII", f["octets"], f["pkts"], f["proto"], f["tos"], f["flags"],
                                f["sport"], f["src"], f["src_mask"], f["inif"], f["dport"], f["dst"], f["dst_mask"],
                                f["outif"], f["nh"], f["src_as"] & 0xFFFF, f["dst_as"] & 0xFFFF, f["last"], f["first"]))
    body = b"".join(recs)
    pad = (-(4 + len(body))) % 4
    sets.append(struct.pack("!HH", V9_TEMPLATE_ID, 4 + len(body) + pad) + body + b"\0" * pad)
    return struct.pack("!HHIIII", 9, count, uptime, secs, seq, 1) + b"".join(sets)


def ip_checksum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(payload, ident):
    udp = struct.pack("!HHHH", 50000, 2055, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0, EXPORTER, COLLECTOR)
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
    return eth + ip + udp


def chunk_seed(seed, k):
    return seed if k == 0 else (seed << 20) + k


def write_chunk(out, version, seed, span, n, k):
    """Writes the pcap records of datagrams [k*CHUNK, min(n, (k+1)*CHUNK)) to `out`."""
    rng = random.Random(chunk_seed(seed, k))
    spacing = span * 1_000_000 / n if span > 0 else 50
    with open(out, "wb") as f:
        for i in range(k * CHUNK, min(n, (k + 1) * CHUNK)):
            usec = int(i * spacing)
            secs, uptime = T0 + usec // 1_000_000, UPTIME0 + usec // 1000
            if version == 5:
                p = v5_datagram(rng, i * PER_DATAGRAM, uptime, secs)
            else:
                p = v9_datagram(rng, i, uptime, secs, i % 20 == 0)
            fr = frame(p, i)
            f.write(struct.pack("<IIII", secs, usec % 1_000_000, len(fr), len(fr)) + fr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--flows", type=int, default=510_000)
    ap.add_argument("--version", type=int, choices=[5, 9], default=5)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--span", type=float, default=0, help="spread export times over this many seconds")
    ap.add_argument("--jobs", type=int, default=1, help="processes generating chunks in parallel")
    a = ap.parse_args()
    n = -(-a.flows // PER_DATAGRAM)
    chunks = -(-n // CHUNK)
    parts = [f"{a.out}.part{k}" for k in range(chunks)]
    try:
        if a.jobs > 1 and chunks > 1:
            with ProcessPoolExecutor(min(a.jobs, chunks)) as ex:
                for fut in [ex.submit(write_chunk, parts[k], a.version, a.seed, a.span, n, k) for k in range(chunks)]:
                    fut.result()
        else:
            for k in range(chunks):
                write_chunk(parts[k], a.version, a.seed, a.span, n, k)
        with open(a.out, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for part in parts:
                with open(part, "rb") as pf:
                    while True:
                        buf = pf.read(1 << 24)
                        if not buf:
                            break
                        f.write(buf)
    finally:
        for part in parts:
            if os.path.exists(part):
                os.remove(part)
    print(f"{a.out}: {n} NetFlow v{a.version} datagrams, {n * PER_DATAGRAM} flows")


if __name__ == "__main__":
    main()
