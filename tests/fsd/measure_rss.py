"""Measures fsd's resident memory (VmRSS) in two situations:

  1. with N idle connections (HELLO done, then nothing);
  2. while it serves a big file to a client that reads slowly;

and, with --unread N, its peak RSS above idle while N connections each hold
64 (--gets) GETs of a 16 MiB file and never read; with --release T, how long after
the last byte moved fsd releases a download nobody reads and an upload that
stopped sending, run with --idle-timeout T.

Usage: measure_rss.py --fsd PATH [--idle N] [--size BYTES] [--slow SECONDS]
                      [--unread N [--gets M]] [--release SECONDS]

Starts its own fsd on 127.0.0.1:0 with a temporary root. Not a test (it
times things); the figures go into notes. Needs `ulimit -n` above N.
"""

import argparse
import fcntl
import os
import socket
import struct
import sys
import termios
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


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def unread(srv, n, gets=64):
    with open(srv.path("big.bin"), "wb") as f:
        f.write(os.urandom(16 << 20))
    c = fc.Client("127.0.0.1", srv.port)
    fsdrun.wait_until(lambda: c.list().get("big.bin", (0,))[0] == 16 << 20)
    c.close()
    time.sleep(1)
    pid = srv.proc.pid
    base = srv.rss_kib()
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")  # VmHWM starts again from here
    many = b"".join(fc.frame(fc.GET, i + 1,
                             fc.range_payload(0, fc.TO_END, "big.bin"))
                    for i in range(gets))
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(fc.frame(fc.HELLO, 0, fc.hello_payload()) + many)
        socks.append(s)
    time.sleep(5)
    peak = status_kib(pid, "VmHWM")
    print("unread: %d connections x %d GETs of 16 MiB, never read: RSS %d "
          "KiB idle, peak %d KiB, %.1f MiB above idle" %
          (n, gets, base, peak, (peak - base) / 1024.0))
    for s in socks:
        s.close()


def fd_targets(pid):
    d = "/proc/%d/fd" % pid
    out = []
    for name in os.listdir(d):
        try:
            out.append(os.readlink(os.path.join(d, name)))
        except OSError:
            pass
    return out


def release(srv, timeout):
    pid = srv.proc.pid
    with open(srv.path("big.bin"), "wb") as f:
        f.write(os.urandom(16 << 20))
    c = fc.Client("127.0.0.1", srv.port)
    fsdrun.wait_until(lambda: c.list().get("big.bin", (0,))[0] == 16 << 20)
    # A download nobody reads: the last byte moved when the client's
    # receive queue stopped growing.
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(fc.frame(fc.HELLO, 0, fc.hello_payload()) +
              fc.frame(fc.GET, 1, fc.range_payload(0, fc.TO_END, "big.bin")))
    last, moved = -1, time.monotonic()
    while any(t.endswith("/big.bin") for t in fd_targets(pid)) or last < 0:
        q = struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD,
                                           b"\0\0\0\0"))[0]
        if q != last:
            last, moved = q, time.monotonic()
        time.sleep(0.01)
    get_s = time.monotonic() - moved
    s.close()
    c.close()
    # An upload that stops sending after 1 MiB.
    c = fc.Client("127.0.0.1", srv.port)
    rid = c.request(fc.PUT, fc.put_payload(8 << 20, 0, "stalled.bin"))
    c.check(*c.next_frame(rid))
    c.send(fc.DATA, rid, os.urandom(1 << 20))
    c.ping()  # fsd has read the data
    moved = time.monotonic()
    temps = lambda: [n for n in os.listdir(srv.root)
                     if n.startswith(".fsd-tmp-")]
    while temps():
        time.sleep(0.01)
    put_s = time.monotonic() - moved
    print("release with --idle-timeout %d: unread GET %.2f s after its last "
          "byte moved, stalled PUT %.2f s after its last DATA" %
          (timeout, get_s, put_s))
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsd", required=True)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--slow", type=float, default=30.0)
    ap.add_argument("--unread", type=int, default=0)
    ap.add_argument("--gets", type=int, default=64)
    ap.add_argument("--release", type=int, default=0)
    a = ap.parse_args()
    fsdrun.FSD = os.path.abspath(a.fsd)
    if a.unread:
        with fsdrun.Fsd("--log-level", "warn", "--max-clients",
                        str(a.unread + 10), "--max-clients-per-ip",
                        str(a.unread + 10)) as srv:
            unread(srv, a.unread, a.gets)
        return
    if a.release:
        with fsdrun.Fsd("--log-level", "warn", "--idle-timeout",
                        str(a.release)) as srv:
            release(srv, a.release)
        return
    with fsdrun.Fsd("--log-level", "warn", "--max-clients",
                    str(a.idle + 10), "--max-clients-per-ip",
                    str(a.idle + 10)) as srv:
        idle(srv, a.idle)
        slow_reader(srv, a.size, a.slow)


if __name__ == "__main__":
    main()
