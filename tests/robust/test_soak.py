#!/usr/bin/env python3
"""Soak: about two minutes of every hostile behaviour at once while 20
honest clients upload, download and verify checksums.

Hostile, all the time: connections with 64 unread GETs of a 16 MiB file,
uploads that stall after a little data, PUTs announcing 20 GiB, half
headers, 1,000 idle connections (replaced as fsd drops them), and a slow
reader that keeps reading. At the end: every honest operation succeeded and
every honest file reads back as last uploaded; the slow reader got its
files whole; fsd is back to the descriptors it held at start and near its
resident memory at start; no temp file is left.

SOAK_SECONDS sets the duration (default 120)."""

import functools
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

from fsptest import (OP, ST, Closed, FsdCase, FspError, frame, main, p_hello,
                     p_put, p_range, raise_nofile, slow_factor, xxh3)

TO_END = 2**64 - 1
MIB = 1 << 20
GIB = 1 << 30
DURATION = float(os.environ.get("SOAK_SECONDS", "120"))
HONEST = 20
IDLE = 1000
IDLE_ADDRS = ["127.0.0.%d" % i for i in range(2, 12)]  # 100 per address
TIMEOUT = 3


def temp_names(root):
    return sorted(n for n in os.listdir(root) if n.startswith(".fsd-tmp-"))


class Soak:
    """Shared state: the stop flag, failures, counters."""

    def __init__(self, case):
        self.case = case
        self.addr = case.fsd.addr
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures = []
        self.counts = {}

    def fail(self, what):
        with self.lock:
            self.failures.append(what)

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def pause(self, s):
        self.stop.wait(s)


def hostile(fn):
    """A hostile client's loop; an exception it did not expect (a bug in
    the test, or fsd misbehaving) is a failure, not a silent thread end."""
    @functools.wraps(fn)
    def run(soak):
        try:
            fn(soak)
        except Exception as e:  # noqa: BLE001
            soak.fail("%s: %r" % (fn.__name__, e))
    return run


def honest(soak, i, final):
    """Uploads, reads back, stats, lists and deletes its own names. Any
    error or mismatch is a failure: fsd owes honest clients everything."""
    rng = random.Random(i)
    names = ["honest%d-%d" % (i, k) for k in range(4)]
    mine = {}
    c = None
    try:
        c = soak.case.fsd.connect(timeout=60 * slow_factor())
        while not soak.stop.is_set():
            name = rng.choice(names)
            op = rng.random()
            if op < 0.15 and name in mine:
                c.delete(name)
                del mine[name]
                soak.count("delete")
                continue
            if op < 0.25:
                listed = c.list()
                for n, h in mine.items():
                    if n.encode() not in listed:
                        soak.fail("%s missing from LIST" % n)
                soak.count("list")
                continue
            size = rng.choice([0, 1, 4096, 65536 + 7, 300000, MIB + 3,
                               2 * MIB])
            data = os.urandom(size)
            c.put(name, data, chunk=rng.choice([65536, MIB]))
            mine[name] = xxh3(data)
            soak.count("put")
            _, back = c.get(name)
            if xxh3(back) != mine[name]:
                soak.fail("%s read back differs" % name)
            soak.count("get")
            if c.stat(name)[0] != size:
                soak.fail("STAT of %s gives the wrong size" % name)
            soak.count("stat")
    except Exception as e:  # noqa: BLE001 - every error is a failure here
        soak.fail("honest client %d: %r" % (i, e))
    finally:
        if c is not None:
            c.close()
        with soak.lock:
            final.update(mine)


def slow_reader(soak):
    """Reads 64 KiB every 0.2 s: slow, never idle, and never dropped."""
    try:
        while not soak.stop.is_set():
            c = soak.case.fsd.connect(rcvbuf=65536, timeout=60 * slow_factor())
            rid = c.request(OP["GET"], p_range(0, TO_END, "big.bin"))
            while not soak.stop.is_set():
                got = c.sock.recv(65536)
                if not got:
                    soak.fail("the slow reader was dropped")
                    return
                c.buf += got
                # The frames are parsed once nearly all bytes are in.
                soak.pause(0.2)
                if len(c.buf) >= 16 * MIB:
                    break
            if soak.stop.is_set():
                c.close()
                return
            _, data = c.finish_get(rid, timeout=120 * slow_factor())
            if xxh3(data) != soak.big_hash:
                soak.fail("the slow reader got a wrong file")
            soak.count("slow reads")
            c.close()
    except Exception as e:  # noqa: BLE001
        soak.fail("slow reader: %r" % e)


@hostile
def unread_gets(soak):
    """A connection with 64 GETs in flight that never reads, for longer
    than the idle timeout; then another."""
    many = b"".join(frame(OP["GET"], k + 1, p_range(0, TO_END, "big.bin"))
                    for k in range(64))
    while not soak.stop.is_set():
        try:
            c = soak.case.fsd.connect(rcvbuf=4096)
            c.send(many)
            soak.count("unread GETs", 64)
        except (OSError, Closed, FspError):
            soak.pause(0.2)
            continue
        soak.pause(TIMEOUT + 2)
        c.abort()


@hostile
def stalled_puts(soak):
    """Eight uploads of 8 MiB that send 64 KiB each and stop."""
    while not soak.stop.is_set():
        try:
            c = soak.case.fsd.connect()
            ids = [c.request(OP["PUT"], p_put(8 * MIB, 0, "st%d" % k))
                   for k in range(8)]
            for rid in ids:
                f = c.next_frame_for(rid)
                if f.op == OP["READY"]:
                    c.send_frame(OP["DATA"], rid, b"s" * 65536)
                    soak.count("stalled PUTs")
        except (OSError, Closed, FspError, socket.timeout):
            soak.pause(0.2)
            continue
        soak.pause(TIMEOUT + 2)
        c.abort()


def huge_puts(soak):
    """PUTs announcing 20 GiB: NO_SPACE at once, never READY."""
    try:
        c = soak.case.fsd.connect()
        while not soak.stop.is_set():
            rid = c.request(OP["PUT"], p_put(20 * GIB, 0, "huge"))
            f = c.next_frame_for(rid)
            if f.op != OP["ERROR"] or f.status()[0] != ST["NO_SPACE"]:
                soak.fail("a 20 GiB PUT got %r" % f)
                return
            soak.count("huge PUTs")
            soak.pause(0.1)
    except Exception as e:  # noqa: BLE001
        soak.fail("huge PUTs: %r" % e)


@hostile
def half_headers(soak):
    """20 connections that send 7 bytes of a frame header and stop."""
    while not soak.stop.is_set():
        socks = []
        for _ in range(20):
            try:
                s = socket.create_connection(soak.addr, timeout=10)
                s.sendall(frame(OP["HELLO"], 0, p_hello()) +
                          frame(OP["STAT"], 1, b"big.bin")[:7])
                socks.append(s)
            except OSError:
                pass
        soak.count("half headers", len(socks))
        soak.pause(TIMEOUT + 2)
        for s in socks:
            s.close()


@hostile
def idle_conns(soak):
    """Keeps about 1,000 connections open that said HELLO and nothing else,
    spread over ten loopback addresses; those fsd drops are replaced."""
    hello = frame(OP["HELLO"], 0, p_hello())
    live = []

    def open_one(src):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((src, 0))
            s.settimeout(10)
            s.connect(soak.addr)
            s.sendall(hello)
            s.setblocking(False)
            return s
        except OSError:
            s.close()
            return None

    k = 0
    while not soak.stop.is_set():
        want = IDLE - len(live)
        for _ in range(min(want, 250)):
            s = open_one(IDLE_ADDRS[k % len(IDLE_ADDRS)])
            k += 1
            if s is not None:
                live.append(s)
                soak.count("idle connections")
        soak.pause(0.5)
        # Drop those fsd closed (EOF after its TIMEOUT error). Not with
        # select(): these descriptors are past its limit of 1,024.
        keep = []
        for s in live:
            try:
                while s.recv(65536):
                    pass
                s.close()  # EOF
            except BlockingIOError:
                keep.append(s)
            except OSError:
                s.close()
        live = keep
    for s in live:
        s.close()


class SoakCase(FsdCase):
    start_fsd = False

    def setUp(self):
        super().setUp()
        raise_nofile(IDLE + 2000)
        args = ["--idle-timeout", str(TIMEOUT), "--max-clients", "4000",
                "--max-clients-per-ip", "200"]
        self.mounted = False
        if os.geteuid() == 0 and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=%d" % GIB, "fsd-soak",
                 self.root], capture_output=True).returncode == 0:
            self.mounted = True
            args += ["--min-free", "64M"]
        else:
            st = os.statvfs(self.root)
            free = st.f_bavail * st.f_frsize
            if free < 8 * GIB:
                self.skipTest("no tmpfs and less than 8 GiB free")
            # Nothing large is ever reserved on the shared disk.
            args += ["--min-free", str(free - 2 * GIB)]
        self.big = os.urandom(16 * MIB)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(self.big)
        self.fsd = self.spawn(args=args)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if self.mounted:
                subprocess.run(["umount", "-l", self.root])
                shutil.rmtree(self.tmp, ignore_errors=True)

    def test_soak(self):
        c = self.fsd.connect()
        self.assertEqual(c.get("big.bin")[1], self.big)
        c.close()
        self.wait_for(lambda: self.fsd.fd_count() == self.fsd.base_fds, 5,
                      "the warm-up client to go")
        time.sleep(1.5)
        rss0 = self.fsd.rss_kb()
        soak = Soak(self)
        soak.big_hash = xxh3(self.big)
        final = {}
        threads = [threading.Thread(target=honest, args=(soak, i, final))
                   for i in range(HONEST)]
        threads += [threading.Thread(target=f, args=(soak,)) for f in
                    (slow_reader, unread_gets, unread_gets, unread_gets,
                     unread_gets, stalled_puts, stalled_puts, huge_puts,
                     half_headers, idle_conns)]
        for t in threads:
            t.start()
        peak = rss0
        end = time.monotonic() + DURATION
        try:
            while time.monotonic() < end and not soak.failures:
                peak = max(peak, self.fsd.rss_kb())
                self.assertTrue(self.fsd.alive(), "fsd died")
                time.sleep(0.5)
        finally:
            soak.stop.set()
            for t in threads:
                t.join(120 * slow_factor())
        print("soak: %.0f s, %r; fsd RSS %d KiB at start, peak %d KiB" %
              (DURATION, soak.counts, rss0, peak))
        self.assertFalse(soak.failures, "\n".join(soak.failures[:20]))
        for what in ("put", "get", "stat", "unread GETs", "stalled PUTs",
                     "huge PUTs", "half headers", "idle connections",
                     "slow reads"):
            self.assertGreater(soak.counts.get(what, 0), 0, what)
        # fsd dropped idle connections and they were replaced.
        self.assertGreater(soak.counts["idle connections"], IDLE)
        # Everything released: descriptors, temp files, memory.
        self.wait_for(lambda: self.fsd.fd_count() == self.fsd.base_fds,
                      4 * TIMEOUT + 10,
                      "fsd to be back to its descriptors at start (%d, %d)" %
                      (self.fsd.fd_count(), self.fsd.base_fds))
        self.wait_for(lambda: temp_names(self.root) == [], 10,
                      "the temp files to go")
        time.sleep(2.5)  # spare buffers are freed after a quiet second
        rss1 = self.fsd.rss_kb()
        print("soak: fsd RSS %d KiB at the end (%d at start)" % (rss1, rss0))
        slack = (256 if slow_factor() > 1 else 48) * 1024
        self.assertLess(rss1 - rss0, slack, "memory not returned")
        self.assertLess(peak - rss0, 4 * slack, "peak memory")
        # Nothing lost: every honest name reads back as last uploaded.
        c = self.fsd.connect()
        listed = c.list()
        for name, h in final.items():
            self.assertIn(name.encode(), listed)
            self.assertEqual(xxh3(c.get(name)[1]), h, name)
        c.close()


if __name__ == "__main__":
    main()
