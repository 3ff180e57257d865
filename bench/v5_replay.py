"""NetFlow v5 records and the paced replay shared by the detection benchmarks' generators
(bench/gen_attack_v5.py for bench/detect_side_by_side.sh, bench/gen_attacks.py for
bench/ddos_fastnetmon.sh).

`send` replays a capture at its own pace, each datagram to every target back to back (the same
bytes; the order of the targets alternates from one datagram to the next, so neither collector is
systematically first), after shifting the capture to start `lead` seconds from now. The shift is a
whole number of seconds, applied to the pcap times and to the v5 header's unix_secs (sysUptime and
the records' first/last stay), so the flows carry wall-clock times with their sub-second phase
intact. The log (JSON) records the shift and, per attack, the wall-clock time just before its
first datagram was sent (`first_datagram_sent`) and, when the truth file gives it, the wall-clock
time of its first packet. Standard library only.
"""

import argparse
import json
import socket
import struct
import sys
import time

from gen_flows import frame  # exporter 192.0.2.10:50000 -> collector 192.0.2.1:2055


def rec(src, dst, pkts, octets, first, last, sport, dport, flags, proto):
    """One NetFlow v5 record (48 bytes); first/last in exporter sysUptime ms."""
    return struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", bytes(src), bytes(dst), bytes([192, 0, 2, 254]), 1, 2,
                       pkts, octets, first, last, sport, dport, 0, flags, proto, 0, 0, 0, 24, 24, 0)


def write_pcap(f, events, t0, uptime0):
    """Writes a pcap file to `f`: each (t_us, tag, records) event, in order, as NetFlow v5
    datagrams of at most 30 records captured at `t0` + t_us (sysUptime `uptime0` + t_us / 1000,
    flow sequence running on), each framed by `frame`; yields (t_us, tag, record count) per
    datagram written."""
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    seq = 0
    n = 0
    for t_us, tag, recs in events:
        for k in range(0, len(recs), 30):
            chunk = recs[k:k + 30]
            secs, usec = t0 + t_us // 1_000_000, t_us % 1_000_000
            hdr = struct.pack("!HHIIIIBBH", 5, len(chunk), uptime0 + t_us // 1000, secs, usec * 1000, seq, 0, 0, 0)
            fr = frame(hdr + b"".join(chunk), n)
            f.write(struct.pack("<IIII", secs, usec, len(fr), len(fr)) + fr)
            yield t_us, tag, len(chunk)
            seq += len(chunk)
            n += 1


def read_pcap(path):
    """The NetFlow payloads of a capture written by `frame`, with their pcap times."""
    with open(path, "rb") as f:
        data = f.read()
    off = 24
    out = []
    while off + 16 <= len(data):
        secs, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        fr = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ihl = (fr[14] & 0x0F) * 4
        out.append((secs, usec, fr[14 + ihl + 8:]))
    return out


def send(pcap, targets, lead, log):
    """Replays `pcap` to every `targets` entry (HOST:PORT), see the module doc; writes `log`."""
    with open(pcap + ".truth.json") as f:
        truth = json.load(f)
    dgs = read_pcap(pcap)
    start = time.time() + lead
    shift = int(start) + 1 - dgs[0][0]  # whole seconds: the v5 unix_secs moves with the pcap time
    socks = []
    for t in targets:
        host, port = t.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.connect((host, int(port)))
        socks.append(s)
    # Truth files give each attack's first datagram in µs (gen_attack_v5.py) or ms (gen_attacks.py).
    firsts = {a["first_datagram_us"] if "first_datagram_us" in a else a["first_datagram_ms"] * 1000: a["name"]
              for a in truth["attacks"]}
    sent_at = {}
    late = 0.0
    errors = 0
    for i, (secs, usec, p) in enumerate(dgs):
        when = secs + shift + usec / 1e6
        d = when - time.time()
        if d > 0.002:
            time.sleep(d - 0.001)
        while time.time() < when:
            pass
        p = bytearray(p)
        struct.pack_into("!I", p, 8, struct.unpack_from("!I", p, 8)[0] + shift)
        now = time.time()
        late = max(late, now - when)
        order = socks if i % 2 == 0 else socks[::-1]
        for s in order:
            try:
                s.send(p)
            except OSError:
                errors += 1
        t_us = (secs - truth["t0"]) * 1_000_000 + usec
        name = firsts.get(t_us)
        if name is not None and name not in sent_at:
            sent_at[name] = now
    t0_wall = truth["t0"] + shift
    res = dict(shift=shift, t0_wall=t0_wall, datagrams=len(dgs), targets=targets, send_errors=errors,
               max_late_s=round(late, 4), first_datagram_sent=sent_at,
               first_packet=dict((a["name"], t0_wall + a["first_packet_ms"] / 1000) for a in truth["attacks"]
                                 if "first_packet_ms" in a))
    with open(log, "w") as f:
        json.dump(res, f, indent=1)
    print(f"sent {len(dgs)} datagrams to {', '.join(targets)} (at most {late * 1000:.1f} ms behind the capture's "
          f"pace, {errors} send errors)", file=sys.stderr)


def main(doc, gen, default_seed):
    """The command line of a generator: `gen OUT.pcap [--seed S]` calls `gen(out, seed)`;
    `send PCAP --to HOST:PORT ... [--lead S] [--log SENT.json]` calls `send`."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--seed", type=int, default=default_seed)
    s = sub.add_parser("send")
    s.add_argument("pcap")
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--lead", type=float, default=2.0)
    s.add_argument("--log", default="sent.json")
    a = ap.parse_args()
    if a.cmd == "gen":
        gen(a.out, a.seed)
    else:
        send(a.pcap, a.to, a.lead, a.log)
