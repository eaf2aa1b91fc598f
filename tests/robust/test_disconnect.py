#!/usr/bin/env python3
"""Disconnects: clients that vanish mid-upload or mid-download, idle clients,
and clients that dribble bytes (slowloris) or never read (slow readers)."""

import os
import socket
import struct
import threading
import time

from fsptest import (OP, ST, FsdCase, FspError, frame, main, p_end, p_hello,
                     p_put, p_range, slow_factor, xxh3)

TO_END = 2**64 - 1


class DisconnectCase(FsdCase):
    fsd_args = ["--idle-timeout", "2"]

    def setUp(self):
        super().setUp()
        self.v1 = os.urandom(1 << 20)
        c = self.fsd.connect()
        c.put("doc.bin", self.v1)
        c.close()

    def assert_v1_intact(self, others=()):
        c = self.fsd.connect()
        self.assertEqual(c.stat("doc.bin")[0], len(self.v1))
        self.assertEqual(c.get("doc.bin")[1], self.v1)
        self.assertEqual(sorted(c.list()), sorted([b"doc.bin"] + [
            o.encode() for o in others]))
        c.close()

    def start_upload(self, name, size, send):
        c = self.fsd.connect()
        rid = c.request(OP["PUT"], p_put(size, 0, name))
        self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
        data = os.urandom(send)
        for pos in range(0, send, 65536):
            c.send_frame(OP["DATA"], rid, data[pos:pos + 65536])
        c.ping()  # the server has read everything sent before the PING
        return c

    def test_disconnect_mid_put_replace(self):
        for how in ("abort", "close"):
            c = self.start_upload("doc.bin", 4 << 20, 2 << 20)
            getattr(c, how)()
            self.wait_for(lambda: self.root_names() == ["doc.bin"], 5,
                          "the temp file of the dropped upload to go")
            self.assert_v1_intact()

    def test_disconnect_mid_put_new_file(self):
        c = self.start_upload("new.bin", 4 << 20, 1 << 20)
        c.abort()
        self.wait_for(lambda: self.root_names() == ["doc.bin"], 5,
                      "the temp file of the dropped upload to go")
        k = self.fsd.connect()
        with self.assertRaises(FspError) as cm:
            k.stat("new.bin")
        self.assertEqual(cm.exception.status, ST["NOT_FOUND"])
        self.assert_v1_intact()

    def test_disconnect_mid_put_all_data_no_end(self):
        # Every byte sent but END never comes: still no file.
        c = self.fsd.connect()
        rid = c.request(OP["PUT"], p_put(5, 0, "almost.txt"))
        self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
        c.send_frame(OP["DATA"], rid, b"hello")
        c.ping()
        c.close()
        self.wait_for(lambda: self.root_names() == ["doc.bin"], 5,
                      "the temp file of the dropped upload to go")
        self.assert_v1_intact()

    def test_disconnect_bye_mid_put(self):
        c = self.start_upload("doc.bin", 4 << 20, 1 << 20)
        rid = c.request(OP["BYE"], b"\x00\x00")
        frames = c.read_until_closed(5 * slow_factor())
        byes = [f for f in frames if f.op == OP["BYE"]]
        self.assertTrue(byes and byes[-1].id == rid, frames)
        self.wait_for(lambda: self.root_names() == ["doc.bin"], 5,
                      "the temp file of the upload dropped by BYE to go")
        self.assert_v1_intact()

    def test_disconnect_mid_get(self):
        big = os.urandom(8 << 20)
        c = self.fsd.connect()
        c.put("big.bin", big)
        c.close()
        base = self.fsd.fd_count()
        for i in range(20):
            c = self.fsd.connect(rcvbuf=16384)
            rid = c.request(OP["GET"], p_range(0, TO_END, "big.bin"))
            got = 0
            while got < (i + 1) * 65536:
                f = c.next_frame_for(rid)
                if f.op == OP["DATA"]:
                    got += len(f.payload)
            if i % 2:
                c.abort()
            else:
                c.close()
        # The server frees each transfer: its open files go back to where
        # they were, and it still serves the file whole.
        self.wait_for(lambda: self.fsd.fd_count() <= base, 5,
                      "fsd to close the files of abandoned downloads "
                      "(fds %d, baseline %d)" % (self.fsd.fd_count(), base))
        k = self.fsd.connect()
        self.assertEqual(k.get("big.bin")[1], big)
        self.assert_v1_intact(others=["big.bin"])

    def test_disconnect_reset_mid_small_gets(self):
        # Hundreds of small GETs in flight, the client gone with a RST as
        # soon as the first bytes arrive: the writes of the answers fail
        # in the middle of the GETs that make them (fsd once freed such a
        # GET under its own feet; the sanitizer builds catch that).
        small = {"s%03d" % i: os.urandom(4096) for i in range(200)}
        c = self.fsd.connect()
        for name, data in small.items():
            c.put(name, data)
        c.close()
        base = self.fsd.fd_count()
        for _ in range(30):
            c = self.fsd.connect(rcvbuf=4096)
            c.sock.sendall(b"".join(
                frame(OP["GET"], c.new_id(), p_range(0, TO_END, name))
                for name in small))
            c.sock.recv(1)
            c.abort()
        self.wait_for(lambda: self.fsd.fd_count() <= base, 5,
                      "fsd to close the files of abandoned downloads "
                      "(fds %d, baseline %d)" % (self.fsd.fd_count(), base))
        k = self.fsd.connect()
        for name in ("s000", "s199"):
            self.assertEqual(k.get(name)[1], small[name])
        self.assert_v1_intact(others=list(small))

    def test_disconnect_cancel_get(self):
        big = os.urandom(8 << 20)
        c = self.fsd.connect(rcvbuf=16384)
        c.put("big.bin", big)
        rid = c.request(OP["GET"], p_range(0, TO_END, "big.bin"))
        self.assertEqual(c.next_frame_for(rid).op, OP["BEGIN"])
        c.send_frame(OP["CANCEL"], rid)
        while True:
            f = c.next_frame_for(rid, timeout=10 * slow_factor())
            if f.op in (OP["END"], OP["ERROR"]):
                break
        if f.op == OP["ERROR"]:
            self.assertEqual(f.status()[0], ST["CANCELED"])
        c.ping()
        self.assertEqual(c.get("doc.bin")[1], self.v1)

    def test_disconnect_idle_client_dropped(self):
        c = self.fsd.connect()
        t0 = time.monotonic()
        frames = c.read_until_closed(10 * slow_factor())
        took = time.monotonic() - t0
        errs = [f for f in frames if f.op == OP["ERROR"]]
        self.assertTrue(errs, "closed without the TIMEOUT error")
        self.assertEqual(errs[-1].id, 0)
        self.assertEqual(errs[-1].status()[0], ST["TIMEOUT"])
        self.assertGreaterEqual(took, 1.0, "dropped before the idle timeout")
        # A client that never says HELLO is dropped too.
        c = self.fsd.connect(hello=False)
        c.read_until_closed(10 * slow_factor())
        self.assert_serving()

    def test_disconnect_idle_mid_frame_dropped(self):
        # Half a frame, then silence: still idle, still dropped.
        c = self.fsd.connect()
        c.send(frame(OP["STAT"], 1, b"doc.bin")[:7])
        c.read_until_closed(10 * slow_factor())
        c = self.fsd.connect()
        c.send(frame(OP["STAT"], 1, b"doc.bin", length=5000)[:100])
        c.read_until_closed(10 * slow_factor())
        self.assert_serving()

    def test_disconnect_many_uploads_dropped(self):
        # 16 connections each hold 64 uploads with some data sent, then all
        # vanish at once: every temp file goes, nothing is listed.
        conns = []
        for i in range(16):
            c = self.fsd.connect()
            ids = [c.request(OP["PUT"], p_put(100000, 0, "u%d-%d" % (i, j)))
                   for j in range(64)]
            for rid in ids:
                self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
            for rid in ids:
                c.send_frame(OP["DATA"], rid, b"d" * 5000)
            c.ping()
            conns.append(c)
        self.assertGreater(len(self.root_names()), 1)
        for c in conns:
            c.abort()
        self.wait_for(lambda: self.root_names() == ["doc.bin"], 10,
                      "1,024 dropped uploads to leave nothing (%d left)" %
                      len(self.root_names()))
        self.assert_v1_intact()

    def test_disconnect_active_client_kept(self):
        c = self.fsd.connect()
        end = time.monotonic() + 4
        while time.monotonic() < end:
            c.ping()
            time.sleep(0.3)
        c.stat("doc.bin")

    def test_disconnect_slowloris(self):
        # Clients that send one byte a second of an unfinished frame must not
        # hold up anyone else. (The server may drop them once idle; that is
        # fine too.)
        stop = threading.Event()
        frame_bytes = frame(OP["HELLO"], 0, p_hello()) + \
            frame(OP["STAT"], 1, b"doc.bin")
        socks = []

        def dribble():
            try:
                s = socket.create_connection(self.fsd.addr, timeout=5)
                socks.append(s)
                for b in frame_bytes:
                    if stop.is_set():
                        break
                    s.send(bytes([b]))
                    stop.wait(1.0)
            except OSError:
                pass

        threads = [threading.Thread(target=dribble) for _ in range(50)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            c = self.fsd.connect()
            end = time.monotonic() + 4
            n = 0
            while time.monotonic() < end or n < 5:
                t0 = time.monotonic()
                c.stat("doc.bin")
                self.assertEqual(c.get("doc.bin")[1], self.v1)
                self.assertLess(time.monotonic() - t0, 2 * slow_factor(),
                                "a request took too long next to slowloris "
                                "clients")
                n += 1
        finally:
            stop.set()
            for t in threads:
                t.join()
            for s in socks:
                s.close()
        self.assert_serving()

    def test_disconnect_slow_subscriber(self):
        # A subscriber that never reads while 10 MiB of notices and 50
        # events are produced (more than the kernel's socket buffers
        # can absorb, so fsd's own queue fills): the producer is not held up,
        # fsd's memory stays bounded (events are coalesced), and when the
        # subscriber finally reads it is told it missed some (RESYNC).
        sub = self.fsd.connect(rcvbuf=4096)
        rid = sub.request(OP["SUBSCRIBE"], struct.pack(">QQ", 0, 0))
        self.assertEqual(sub.frames_for(rid)[-1].op, OP["SUBSCRIBED"])
        rss = self.fsd.rss_kb()
        c = self.fsd.connect()
        t0 = time.monotonic()
        text = b"n" * 4096
        for batch in range(50):
            ids = [c.request(OP["NOTICE"], text) for _ in range(50)]
            for rid in ids:
                self.assertEqual(c.frames_for(rid)[-1].op, OP["OK"])
            c.put("ev%d" % (batch % 5), b"x" * batch)
        self.assertLess(time.monotonic() - t0, 30 * slow_factor())
        # Under ASan the notices' freed buffers sit in its quarantine.
        self.assertLess(self.fsd.rss_kb() - rss,
                        (128 if slow_factor() > 1 else 32) * 1024)
        # Now read everything queued: a RESYNC comes once it has drained.
        # The socket's 4 KiB receive buffer held the sender at a zero
        # window for a long time, and TCP probes such a window at growing
        # intervals, so a gap of some seconds before more bytes come is no
        # sign that nothing more is coming: wait for the RESYNC within a
        # wide bound, then read on until the stream is quiet.
        seen = []
        deadline = time.monotonic() + 60 * slow_factor()
        while True:
            try:
                seen.append(sub.recv_frame(timeout=2 * slow_factor()).op)
            except socket.timeout:
                if OP["RESYNC"] in seen or time.monotonic() > deadline:
                    break
        self.assertIn(OP["RESYNC"], seen)
        # The kernel's buffers hold about 1,000 of the 2,500 notices and
        # fsd queues 1 MiB more before it coalesces; had it queued
        # everything, all 2,500 would arrive.
        self.assertLess(seen.count(OP["NOTIFY"]), 2000,
                        "events for a stuck subscriber are queued without "
                        "bound")
        sub.ping()

    def test_disconnect_slow_reader(self):
        # A client that asks for a big file and never reads holds nothing but
        # its own transfer.
        big = os.urandom(16 << 20)
        c = self.fsd.connect()
        c.put("big.bin", big)
        rss = self.fsd.rss_kb()
        slow = []
        for _ in range(4):
            s = self.fsd.connect(rcvbuf=4096)
            for i in range(4):
                s.request(OP["GET"], p_range(0, TO_END, "big.bin"))
            slow.append(s)
        time.sleep(0.5)
        k = self.fsd.connect()
        for _ in range(10):
            t0 = time.monotonic()
            self.assertEqual(k.get("doc.bin")[1], self.v1)
            k.put("other.bin", b"x" * 1000)
            self.assertLess(time.monotonic() - t0, 2 * slow_factor())
        # 16 stalled 16 MiB downloads must not be buffered in memory.
        self.assertLess(self.fsd.rss_kb() - rss, 96 * 1024)
        for s in slow:
            s.abort()
        self.assert_serving()


class NoFsyncDisconnectCase(FsdCase):
    """With --no-fsync, small uploads' open, write and commit share
    threadpool trips (server/batch.c): clients that vanish while those are
    queued or running leave nothing half done."""

    fsd_args = ["--idle-timeout", "2", "--no-fsync"]

    def test_disconnect_reset_mid_small_puts(self):
        # 40 connections each start 50 uploads of 2 KiB, send every one's
        # DATA and END at once, and reset right away: their opens, writes
        # and commits are in the trips when the connections go. Every file
        # is then whole or absent, no temp file stays, no descriptor leaks.
        c = self.fsd.connect()
        c.put("doc.bin", b"v1" * 1000)
        c.close()
        base = self.fsd.fd_count()
        sent = {}
        for i in range(40):
            c = self.fsd.connect()
            ids = {}
            for j in range(50):
                name = "p%02d-%03d" % (i, j)
                ids[name] = c.request(OP["PUT"], p_put(2048, 0, name))
            for rid in ids.values():
                self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
            out = []
            for name, rid in ids.items():
                sent[name] = os.urandom(2048)
                out.append(frame(OP["DATA"], rid, sent[name]))
                out.append(frame(OP["END"], rid, p_end(2048, xxh3(sent[name]))))
            c.sock.sendall(b"".join(out))
            c.abort()
        self.wait_for(lambda: not any(n.startswith(".")
                                      for n in self.root_names()), 10,
                      "the temp files of dropped uploads to go")
        self.wait_for(lambda: self.fsd.fd_count() <= base, 5,
                      "fsd to close the files of dropped uploads "
                      "(fds %d, baseline %d)" % (self.fsd.fd_count(), base))
        for name in self.root_names():
            if name == "doc.bin":
                continue
            with open(os.path.join(self.root, name), "rb") as f:
                self.assertEqual(f.read(), sent[name], name)
        k = self.fsd.connect()
        self.assertEqual(k.get("doc.bin")[1], b"v1" * 1000)
        k.put("after.bin", b"still serving")
        self.assertEqual(k.get("after.bin")[1], b"still serving")


if __name__ == "__main__":
    main()
