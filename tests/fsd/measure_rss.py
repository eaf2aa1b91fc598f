"""Measures fsd's resident memory (VmRSS) in two situations:

  1. with N idle connections (HELLO done, then nothing);
  2. while it serves a big file to a client that reads slowly.

Usage: measure_rss.py --fsd PATH [--idle N] [--size BYTES] [--slow SECONDS]

Starts its own fsd on 127.0.0.1:0 with a temporary root. Not a test (it
times things); the figures go into notes. Needs `ulimit -n` above N.
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402


def idle(srv, n):
    base = srv.rss_kib()
    conns = [fc.Client("127.0.0.1", srv.port) for _ in range(n)]
    time.sleep(1)
    conns[0].ping()
    now = srv.rss_kib()
    print("idle: RSS %d KiB before, %d KiB with %d idle connections: "
          "%.0f bytes per connection" % (base, now, n,
                                         (now - base) * 1024.0 / n))
    for c in conns:
        c.close()


def slow_reader(srv, size, slow_s):
    path = srv.path("big.bin")
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    c = fc.Client("127.0.0.1", srv.port)
    fsdrun.wait_until(lambda: c.list().get("big.bin", (0,))[0] == size, 30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    base = srv.rss_kib()
    rid = c.request(fc.GET, fc.range_payload(0, fc.TO_END, "big.bin"))
    h, got, peak, t0 = fc.Xxh3(), 0, 0, time.monotonic()
    while True:
        op, _, p = c.check(*c.next_frame(rid))
        if op == fc.DATA:
            h.update(p)
            got += len(p)
            if time.monotonic() - t0 < slow_s:
                time.sleep(0.05)  # about 5 MB/s with 256 KiB frames
                peak = max(peak, srv.rss_kib())
        elif op == fc.END:
            break
    ok = (got == size and
          int.from_bytes(p[8:16], "big") == h.digest())
    print("slow reader: RSS %d KiB before, at most %d KiB during the first "
          "%.0f s of a %d MiB GET (then read at full speed; %s)" %
          (base, peak, slow_s, size >> 20,
           "verified" if ok else "MISMATCH"))
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsd", required=True)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--slow", type=float, default=30.0)
    a = ap.parse_args()
    fsdrun.FSD = os.path.abspath(a.fsd)
    with fsdrun.Fsd("--log-level", "warn", "--max-clients",
                    str(a.idle + 10)) as srv:
        idle(srv, a.idle)
        slow_reader(srv, a.size, a.slow)


if __name__ == "__main__":
    main()
