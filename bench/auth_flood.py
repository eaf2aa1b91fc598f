#!/usr/bin/env python3
"""An authenticated user's size requests while another address floods fsd with
bad authentication attempts (the issue's row: 1,000 attempts per second,
p99 under 10 ms). Starts its own fsd with a users file on 127.0.0.1:0.

Usage: bench/auth_flood.py FSD [SECONDS] [RATE]
Prints p50/p99 of the size requests without and with the flood, and what
became of the attempts (refused at once with LIMIT, or let in to send a bad
AUTH, which fsd checks after the delay the address earned)."""

import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "fsd"))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402
from test_auth import Conn, ssh_pub  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import \
    Ed25519PrivateKey  # noqa: E402


def percentile(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def login(port, key):
    """alice, from another loopback address than the flood's."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", port))
    c = Conn.__new__(Conn)
    fc.Client.__init__(c, sock=s, hello=False)
    c.snonce = None
    c.hello2()
    c.auth(key, "alice")
    assert c.read_frame()[:2] == (fc.OK, 0)
    c.put("f.txt", b"data")
    return c


def measure(c, seconds):
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        c.stat("f.txt")
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def flood(port, rate, seconds, stats, stop):
    bad = Ed25519PrivateKey.generate()
    lock = threading.Lock()

    def attempt():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(fc.frame(fc.HELLO, 0, fc.hello_payload(version=2)))
            c = Conn.__new__(Conn)
            fc.Client.__init__(c, sock=s, hello=False)
            op, _, payload = c.read_frame()
            if op == fc.ERROR:
                key = "refused at once"
            else:
                op, _, nonce = c.read_frame()
                c.send(0x06, 0, os.urandom(32) + bad.sign(b"x") + b"mallory")
                # A flooder does not wait for the answer: the next try.
                key = "bad AUTH sent"
            s.close()
        except Exception:
            key = "broken"
        with lock:
            stats[key] = stats.get(key, 0) + 1

    # Workers each keep their share of the rate, so that starting threads
    # does not cap it.
    workers, start, counts = 32, time.monotonic(), []

    def worker(i):
        k = 0
        while not stop.is_set() and time.monotonic() - start < seconds:
            due = start + (k * workers + i) / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            attempt()
            k += 1
        counts.append(k)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 15)
    n = sum(counts)
    stats["attempts"] = n
    stats["rate"] = n / (time.monotonic() - start)


def main():
    fsdrun.FSD = os.path.abspath(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 1000
    tmp = tempfile.mkdtemp(prefix="fsd-flood-")
    key = Ed25519PrivateKey.generate()
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("alice read,write %s\n" % ssh_pub(key))
    os.chmod(users, 0o600)
    srv = fsdrun.Fsd("--users", users, "--log-level", "warn").start()
    try:
        c = login(srv.port, key)
        quiet = measure(c, seconds)
        stats, stop = {}, threading.Event()
        t = threading.Thread(target=flood,
                             args=(srv.port, rate, seconds + 2, stats, stop))
        t.start()
        time.sleep(1)
        loud = measure(c, seconds)
        stop.set()
        t.join()
        c.close()
    finally:
        srv.stop()
        subprocess.run(["rm", "-rf", tmp])
    for name, lat in (("no flood", quiet), ("flood", loud)):
        print("%-9s size requests: %6d  p50 %.3f ms  p99 %.3f ms" %
              (name, len(lat), percentile(lat, 50), percentile(lat, 99)))
    print("flood: %d attempts, %.0f/s: %s" % (
        stats.get("attempts", 0), stats.get("rate", 0),
        ", ".join("%s %d" % (k, v) for k, v in sorted(stats.items())
                  if k not in ("attempts", "rate"))))


if __name__ == "__main__":
    main()
