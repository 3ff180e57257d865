#!/usr/bin/env python3
"""Sends the UDP payloads of a pcap to HOST:PORT from one socket: the plain Python sender of the
flow ingest benchmark (bench/flow_ingest.sh SENDER=python), beside the faster `pharos replay`.

Usage: send_udp.py CAPTURE.pcap HOST PORT [RATE [LOOPS]]
RATE: datagrams per second (0, the default: as fast as the socket goes); LOOPS: times the whole
capture is sent (default 1). Prints "sent N datagrams in S s: R datagrams/s". Standard library
only; reads classic pcap (Ethernet, IPv4, UDP) as bench/gen_flows.py writes it.
"""

import socket
import struct
import sys
import time


def payloads(path):
    out = []
    with open(path, "rb") as f:
        hdr = f.read(24)
        endian = "<" if struct.unpack("<I", hdr[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            _, _, incl, _ = struct.unpack(endian + "IIII", rh)
            fr = f.read(incl)
            if len(fr) < 42 or fr[12:14] != b"\x08\x00":
                continue
            ihl = (fr[14] & 0x0F) * 4
            if fr[14 + 9] != 17:
                continue
            out.append(fr[14 + ihl + 8:])
    return out


def main():
    path, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    loops = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    data = payloads(path)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    dst = (host, port)
    sent = errors = 0
    t0 = time.monotonic()
    for _ in range(loops):
        for p in data:
            if rate > 0 and sent % 64 == 0:
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            try:
                s.sendto(p, dst)
            except OSError:
                errors += 1
            sent += 1
    secs = max(time.monotonic() - t0, 1e-9)
    print(f"sent {sent} datagrams in {secs:.3f} s: {sent / secs:.0f} datagrams/s; {errors} send errors")


if __name__ == "__main__":
    main()
