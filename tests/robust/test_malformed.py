#!/usr/bin/env python3
"""Malformed input: garbage, broken framing, bad payloads, frames out of
sequence. protocol.md section 7: close only when the framing can no longer be
trusted; otherwise answer with an ERROR carrying the frame's id and go on."""

import os
import random
import socket
import struct
import time

from fsptest import (OP, ST, Closed, FsdCase, FspError, frame, main,
                     p_end, p_hello, p_put, p_range, rand_bytes, slow_factor,
                     xxh3)


class MalformedCase(FsdCase):

    def setUp(self):
        super().setUp()
        c = self.fsd.connect()
        c.put("known.txt", b"known contents\n")
        c.close()

    def assert_known_intact(self, c=None):
        own = c is None
        c = c or self.fsd.connect()
        self.assertEqual(c.get("known.txt")[1], b"known contents\n")
        if own:
            c.close()

    def assert_stays_up(self, c):
        """The same connection still answers requests."""
        c.ping(b"still-there")
        self.assert_known_intact(c)

    def assert_closes_with(self, c, status, timeout=5):
        """The server sends ERROR id 0 with status (if it sends anything) and
        closes the connection."""
        frames = c.read_until_closed(timeout * slow_factor())
        errs = [f for f in frames if f.op == OP["ERROR"]]
        self.assertTrue(errs, "connection closed without an ERROR frame")
        self.assertEqual(errs[-1].id, 0, errs)
        self.assertEqual(errs[-1].status()[0], ST[status], errs)

    # ---- garbage and broken framing

    def test_malformed_garbage_first_bytes(self):
        c = self.fsd.connect(hello=False)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assert_closes_with(c, "PROTOCOL")
        self.assert_serving()
        self.assert_known_intact()

    def test_malformed_random_garbage(self):
        rng = random.Random(1)
        for i in range(60):
            c = self.fsd.connect(hello=(i % 2 == 0))
            blob = rand_bytes(rng, rng.randrange(1, 4096))
            try:
                c.send(blob)
                if i % 3 == 0:
                    c.sock.shutdown(socket.SHUT_WR)
                # Whatever comes back must be well-formed frames (recv_frame
                # checks), then either the connection closes or stays quiet.
                deadline = time.monotonic() + 0.3
                while time.monotonic() < deadline:
                    c.recv_frame(timeout=deadline - time.monotonic())
            except (Closed, socket.timeout, ConnectionError):
                pass
            finally:
                c.abort()
        self.assert_serving()
        self.assert_known_intact()

    def test_malformed_random_frames(self):
        # Well-framed but otherwise random traffic on 8 connections at once:
        # random opcodes (known and not), ids, payloads, names, ranges, and
        # upload pieces. The framing is valid, so no connection may be
        # closed; every answer must be a well-formed frame; known.txt (only
        # ever read) stays intact.
        import threading
        names = [b"known.txt", b"m1", b"m2", b"..", b"", b"a/b", b"\xff"]
        ops = [o for n, o in OP.items() if n not in ("BYE",)] + [0x05, 0x7E]
        errors = []

        def one(seed):
            rng = random.Random(seed)
            try:
                c = self.fsd.connect()
                stop = threading.Event()
                got = []

                def reader():
                    try:
                        while not stop.is_set():
                            try:
                                got.append(c.recv_frame(timeout=0.2))
                            except socket.timeout:
                                pass
                    except Exception as e:  # Closed or Violation
                        errors.append("conn %d: %r" % (seed, e))

                t = threading.Thread(target=reader)
                t.start()
                end = time.monotonic() + 3
                while time.monotonic() < end:
                    op = rng.choice(ops)
                    rid = rng.choice([0, 1, 2, 3, rng.getrandbits(32)])
                    name = rng.choice(names)
                    if op in (OP["GET"], OP["HASH"]):
                        body = p_range(rng.choice([0, 1, 5, 2**63, 2**64 - 1]),
                                       rng.choice([0, 3, 2**64 - 1]), name)
                    elif op == OP["PUT"]:
                        nm = name if name != b"known.txt" else b"m1"
                        body = p_put(rng.choice([0, 4, 10, 2**64 - 1]),
                                     rng.choice([0, 1, 2]), nm)
                    elif op in (OP["STAT"], OP["DELETE"]):
                        body = name if op == OP["STAT"] or \
                            name != b"known.txt" else b"m2"
                    elif op == OP["END"]:
                        body = p_end(rng.choice([0, 4, 10]), rng.getrandbits(64))
                    else:
                        body = rand_bytes(rng, rng.choice([0, 1, 8, 16, 20,
                                                           100, 2000]))
                    c.send(frame(op, rid, body))
                    if rng.random() < 0.05:
                        time.sleep(0.01)
                stop.set()
                t.join()
                # The connection is still up and answering (an id the random
                # traffic did not use).
                c.next_id = 0xFFFFFF00
                c.ping(b"end")
                c.close()
            except Exception as e:
                errors.append("conn %d: %r" % (seed, e))

        ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60 * slow_factor())
        self.assertFalse(errors, errors[:5])
        self.assert_serving()
        self.assert_known_intact()

    def test_malformed_garbage_after_hello(self):
        c = self.fsd.connect()
        c.send(b"\x00" * 64)
        self.assert_closes_with(c, "PROTOCOL")
        self.assert_serving()

    def test_malformed_wrong_magic(self):
        c = self.fsd.connect()
        c.send(frame(OP["STAT"], 3, b"known.txt", magic=0xF6))
        self.assert_closes_with(c, "PROTOCOL")
        self.assert_serving()

    def test_malformed_wrong_version(self):
        c = self.fsd.connect()
        c.send(frame(OP["STAT"], 3, b"known.txt", version=2))
        self.assert_closes_with(c, "VERSION")
        self.assert_serving()

    def test_malformed_wrong_version_first_frame(self):
        c = self.fsd.connect(hello=False)
        c.send(frame(OP["HELLO"], 0, p_hello(), version=9))
        self.assert_closes_with(c, "VERSION")
        self.assert_serving()

    def test_malformed_nonzero_flags(self):
        c = self.fsd.connect()
        c.send(frame(OP["STAT"], 3, b"known.txt", flags=0x80))
        self.assert_closes_with(c, "PROTOCOL")
        self.assert_serving()

    def test_malformed_truncated_header(self):
        # A header cut short, then the client goes away: nothing to answer,
        # nothing to crash on.
        for n in range(1, 12):
            c = self.fsd.connect()
            c.send(frame(OP["STAT"], 5, b"known.txt")[:n])
            with self.assertRaises(socket.timeout):
                c.recv_frame(timeout=0.05)
            c.close()
        # Half-closed after a partial header: the server sees EOF mid-frame.
        c = self.fsd.connect()
        c.send(frame(OP["STAT"], 5, b"known.txt")[:7])
        c.sock.shutdown(socket.SHUT_WR)
        c.read_until_closed(5 * slow_factor())
        self.assert_serving()
        self.assert_known_intact()

    def test_malformed_truncated_payload(self):
        c = self.fsd.connect()
        c.send(frame(OP["STAT"], 5, b"known.txt", length=1000))
        with self.assertRaises(socket.timeout):
            c.recv_frame(timeout=0.2)
        c.sock.shutdown(socket.SHUT_WR)
        c.read_until_closed(5 * slow_factor())
        self.assert_serving()

    def test_malformed_length_over_limit(self):
        # The server checks the length as soon as the header is in: it must
        # answer TOO_LARGE without waiting for a payload we never send.
        for length in (None, 0x7FFFFFFF, 0xFFFFFFFC, 0xFFFFFFFF):
            c = self.fsd.connect()
            if length is None:
                length = c.max_payload + 1
            c.send(frame(OP["DATA"], 4, b"", length=length))
            self.assert_closes_with(c, "TOO_LARGE")
        # A HELLO over the limit as the very first frame.
        c = self.fsd.connect(hello=False)
        c.send(frame(OP["HELLO"], 0, b"", length=0xFFFFFFFF))
        self.assert_closes_with(c, "TOO_LARGE")
        self.assert_serving()

    def test_malformed_payload_at_limit_is_accepted(self):
        c = self.fsd.connect()
        data = os.urandom(c.max_payload)
        c.put("big-frame", data, chunk=c.max_payload)
        self.assertEqual(c.get("big-frame")[1], data)

    # ---- unknown opcodes, bad payloads

    def test_malformed_unknown_opcode(self):
        c = self.fsd.connect()
        for op in (0x00, 0x07, 0x1A, 0x30, 0x7F, 0xFF):
            c.send(frame(op, 40 + op, b"some payload"))
            f = c.recv_frame()
            self.assertEqual((f.op, f.id), (OP["ERROR"], 40 + op), f)
            self.assertEqual(f.status()[0], ST["UNKNOWN_OP"])
        self.assert_stays_up(c)

    def test_malformed_unknown_opcode_first_frame(self):
        c = self.fsd.connect(hello=False)
        c.send(frame(0x7F, 0, b"xx"))
        self.assert_closes_with(c, "PROTOCOL")
        self.assert_serving()

    def test_malformed_first_frame_not_hello(self):
        c = self.fsd.connect(hello=False)
        c.send(frame(OP["STAT"], 1, b"known.txt"))
        self.assert_closes_with(c, "PROTOCOL")
        self.assert_serving()

    def test_malformed_bad_payloads(self):
        c = self.fsd.connect()
        cases = [
            (OP["LIST"], b"x", "BAD_REQUEST"),
            (OP["GET"], b"\x00" * 5, "BAD_REQUEST"),
            (OP["HASH"], b"\x00" * 15, "BAD_REQUEST"),
            (OP["PUT"], b"\x00" * 8, "BAD_REQUEST"),
            (OP["PUT"], p_put(5, 2, "known.txt"), "BAD_REQUEST"),
            (OP["PUT"], p_put(5, 0xFF, "new.txt"), "BAD_REQUEST"),
            (OP["SUBSCRIBE"], b"\x00" * 15, "BAD_REQUEST"),
            (OP["SUBSCRIBE"], b"\x00" * 17, "BAD_REQUEST"),
            (OP["UNSUBSCRIBE"], b"\x01", "BAD_REQUEST"),
            (OP["CANCEL"], b"\x01", "BAD_REQUEST"),
            (OP["BYE"], b"\x00", "BAD_REQUEST"),
            (OP["BYE"], b"\x00\x00\xff", "BAD_REQUEST"),
            (OP["NOTICE"], b"", ("BAD_REQUEST", "TOO_LARGE")),
            (OP["NOTICE"], b"\xff\xfe", "BAD_REQUEST"),
            # A field over its limit is malformed like any other (section 7).
            (OP["NOTICE"], b"a" * 4097, "BAD_REQUEST"),
            (OP["PING"], b"p" * 65, "BAD_REQUEST"),
            (OP["HELLO"], b"\x00", ("PROTOCOL", "BAD_REQUEST")),
        ]
        rid = 100
        for op, payload, status in cases:
            rid += 1
            if op == OP["HELLO"]:
                rid_used = 0
            else:
                rid_used = rid
            c.send(frame(op, rid_used, payload))
            f = c.recv_frame()
            self.assertEqual(f.op, OP["ERROR"], "op %#x payload %r: %r" %
                             (op, payload[:20], f))
            # Only a request is answered on its own id; a bad CANCEL, BYE
            # or PING is not a request and ends none (section 7).
            not_request = op in (OP["CANCEL"], OP["BYE"], OP["PING"])
            self.assertEqual(f.id, 0 if not_request else rid_used)
            self.assert_error([f], status)
        self.assert_stays_up(c)
        self.assertNotIn(b"new.txt", c.list())

    def test_malformed_bad_name_in_every_frame(self):
        c = self.fsd.connect()
        for name in (b"", b"..", b"a/b", b"a\x00b", b"\xff"):
            for op, payload in ((OP["STAT"], name), (OP["DELETE"], name),
                                (OP["GET"], p_range(0, 10, name)),
                                (OP["HASH"], p_range(0, 10, name)),
                                (OP["PUT"], p_put(3, 0, name)),
                                (OP["PUT"], p_put(3, 1, name))):
                rid = c.new_id()
                c.send(frame(op, rid, payload))
                f = c.recv_frame()
                self.assertEqual((f.op, f.id), (OP["ERROR"], rid), f)
                self.assert_error([f], "BAD_NAME")
        self.assert_stays_up(c)

    def test_malformed_hostile_ranges(self):
        c = self.fsd.connect()
        data = b"0123456789abcde"  # 15 bytes
        c.put("r.txt", data)
        top = 2**64 - 1
        # (offset, length) -> expected bytes, or None for RANGE
        cases = [((0, top), data), ((5, top), data[5:]), ((5, 3), data[5:8]),
                 ((14, top), data[14:]), ((15, top), b""), ((15, 0), b""),
                 ((0, 0), b""), ((3, 2**63), data[3:]), ((10, top - 5),
                                                         data[10:]),
                 ((16, 1), None), ((2**63, 1), None), ((top, top), None),
                 ((top, 1), None)]
        for (off, length), want in cases:
            if want is None:
                for fn in (c.get, c.hash):
                    with self.assertRaises(FspError, msg=(off, length)) as cm:
                        fn("r.txt", off, length)
                    self.assertEqual(cm.exception.status, ST["RANGE"])
                continue
            size, got = c.get("r.txt", off, length)
            self.assertEqual((size, got), (len(data), want), (off, length))
            d_off, d_len, d_hash = c.hash("r.txt", off, length)
            self.assertEqual((d_off, d_len, d_hash),
                             (off, len(want), xxh3(want)), (off, length))
        self.assert_stays_up(c)

    def test_malformed_huge_declared_size(self):
        c = self.fsd.connect()
        rid = c.request(OP["PUT"], p_put(2**64 - 1, 0, "huge.bin"))
        f = c.next_frame_for(rid)
        if f.op == OP["READY"]:
            c.send(frame(OP["DATA"], rid, b"x" * 1000) +
                   frame(OP["END"], rid, p_end(1000, xxh3(b"x" * 1000))))
            f = c.next_frame_for(rid)
        self.assert_error([f], ("SIZE", "TOO_LARGE", "NO_SPACE"), rid)
        self.assert_stays_up(c)
        self.assertEqual(sorted(c.list()), [b"known.txt"])

    def test_malformed_id_zero_and_stray_cancel(self):
        c = self.fsd.connect()
        for op, body in ((OP["STAT"], b"known.txt"), (OP["LIST"], b""),
                         (OP["PUT"], p_put(1, 0, "z"))):
            c.send(frame(op, 0, body))
            f = c.recv_frame()
            self.assertEqual((f.op, f.id), (OP["ERROR"], 0), f)
            self.assert_error([f], "PROTOCOL")
        # A CANCEL for an id not in flight has no answer at all.
        c.send(frame(OP["CANCEL"], 999) + frame(OP["CANCEL"], 0) +
               frame(OP["PING"], 5, b"after"))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id, f.payload), (OP["PONG"], 5, b"after"))
        self.assert_stays_up(c)

    def test_malformed_ping_limits(self):
        c = self.fsd.connect()
        c.ping(b"")
        c.ping(b"p" * 64)
        self.assert_stays_up(c)

    # ---- out of sequence

    def test_malformed_second_hello(self):
        c = self.fsd.connect()
        c.send(frame(OP["HELLO"], 0, p_hello()))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id), (OP["ERROR"], 0))
        self.assert_error([f], "PROTOCOL")
        self.assert_stays_up(c)

    def test_malformed_data_without_put(self):
        c = self.fsd.connect()
        # Neither is a request: the ERROR is on id 0, ending none.
        c.send(frame(OP["DATA"], 9, b"hello"))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id), (OP["ERROR"], 0))
        self.assert_error([f], "PROTOCOL")
        c.send(frame(OP["END"], 9, p_end(5, xxh3(b"hello"))))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id), (OP["ERROR"], 0))
        self.assert_error([f], "PROTOCOL")
        self.assert_stays_up(c)
        self.assertEqual(sorted(c.list()), [b"known.txt"])

    def test_malformed_data_before_ready(self):
        # The client must wait for READY; one that does not gets PROTOCOL
        # for the upload, which stores nothing.
        c = self.fsd.connect()
        rid = c.new_id()
        c.send(frame(OP["PUT"], rid, p_put(5, 0, "eager.txt")) +
               frame(OP["DATA"], rid, b"hello") +
               frame(OP["END"], rid, p_end(5, xxh3(b"hello"))))
        frames = []
        while not frames or frames[-1].op not in (OP["ERROR"], OP["INFO"]):
            frames.append(c.recv_frame())
        self.assert_error(frames[-1:], "PROTOCOL", rid)
        self.assert_stays_up(c)
        self.assertNotIn(b"eager.txt", c.list())
        self.wait_for(lambda: self.root_names() == ["known.txt"], 5,
                      "the refused upload's temp file to go")

    def test_malformed_end_twice(self):
        c = self.fsd.connect()
        c.put("once.txt", b"hello")
        rid = c.next_id - 1
        c.send(frame(OP["END"], rid, p_end(5, xxh3(b"hello"))))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id), (OP["ERROR"], 0))
        self.assert_error([f], "PROTOCOL")
        self.assertEqual(c.get("once.txt")[1], b"hello")
        self.assert_stays_up(c)

    def test_malformed_data_for_a_get(self):
        c = self.fsd.connect()
        big = os.urandom(3 << 20)
        c.put("big.bin", big)
        rid = c.new_id()
        c.inflight[rid] = OP["GET"]
        c.send(frame(OP["GET"], rid, p_range(0, 0xFFFFFFFFFFFFFFFF,
                                              "big.bin")) +
               frame(OP["DATA"], rid, b"not yours") +
               frame(OP["END"], rid, p_end(9, 0)))
        # Every frame for rid, until things go quiet: the GET must deliver the
        # file whole (or end with an error), and the DATA/END must be refused
        # with PROTOCOL; nothing is written.
        frames = []
        deadline = time.monotonic() + 10 * slow_factor()
        while time.monotonic() < deadline:
            try:
                f = c.recv_frame(timeout=0.5 * slow_factor())
            except socket.timeout:
                break
            frames.append(f)
        protocol = [f for f in frames if f.op == OP["ERROR"] and
                    f.status()[0] == ST["PROTOCOL"]]
        self.assertEqual(len(protocol), 2, frames[:3] + frames[-4:])
        data = b"".join(f.payload for f in frames if f.op == OP["DATA"])
        ends = [f for f in frames if f.op == OP["END"]]
        if ends:
            self.assertEqual(data, big)
        self.assertEqual(c.get("big.bin")[1], big)
        self.assert_stays_up(c)

    def test_malformed_server_opcodes_from_client(self):
        c = self.fsd.connect()
        for name in ("OK", "ERROR", "ENTRIES", "INFO", "BEGIN", "READY",
                     "DIGEST", "SUBSCRIBED", "EVENT", "NOTIFY", "RESYNC"):
            rid = c.new_id()
            c.send(frame(OP[name], rid, b"\x00" * 8))
            f = c.recv_frame()
            self.assertEqual((f.op, f.id), (OP["ERROR"], 0), name)
            self.assert_error([f], ("PROTOCOL", "UNKNOWN_OP"))
        self.assert_stays_up(c)

    def test_malformed_id_in_flight_reused(self):
        c = self.fsd.connect()
        rid = c.request(OP["PUT"], p_put(5, 0, "pending.txt"))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id), (OP["READY"], rid))
        # Same id while the upload waits for data: PROTOCOL for the newcomer
        # on id 0 (on rid it would end the upload), the upload goes on.
        c.send(frame(OP["STAT"], rid, b"known.txt"))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id), (OP["ERROR"], 0))
        self.assert_error([f], "PROTOCOL")
        c.send(frame(OP["DATA"], rid, b"hello") +
               frame(OP["END"], rid, p_end(5, xxh3(b"hello"))))
        f = c.recv_frame()
        self.assertEqual((f.op, f.id), (OP["INFO"], rid), f)
        self.assertEqual(c.get("pending.txt")[1], b"hello")

    def test_malformed_too_much_data(self):
        c = self.fsd.connect()
        with self.assertRaises(FspError) as cm:
            c.put("over.txt", b"0123456789", size=5)
        self.assert_error(cm.exception, "SIZE")
        self.assert_stays_up(c)
        self.assertNotIn(b"over.txt", c.list())
        self.wait_for(lambda: self.root_names() == ["known.txt"], 5,
                      "the temp file of a failed upload to go")

    def test_malformed_wrong_end(self):
        c = self.fsd.connect()
        data = b"payload!"
        for end, status in ((p_end(len(data), xxh3(data) ^ 1), "CHECKSUM"),
                            (p_end(len(data) + 1, xxh3(data)), "SIZE"),
                            (b"\x00" * 3, "BAD_REQUEST")):
            with self.assertRaises(FspError) as cm:
                c.put("known.txt", data, end=end)
            self.assert_error(cm.exception, status)
            self.assert_known_intact(c)
        with self.assertRaises(FspError) as cm:
            c.put("short.txt", data, size=len(data) + 10,
                  end=p_end(len(data), xxh3(data)))
        self.assert_error(cm.exception, "SIZE")
        self.assertEqual(sorted(c.list()), [b"known.txt"])
        self.wait_for(lambda: self.root_names() == ["known.txt"], 5,
                      "temp files of failed uploads to go")

    def test_malformed_too_many_in_flight(self):
        c = self.fsd.connect()
        limit = c.server_hello["max_inflight"]
        self.assertGreater(limit, 0)
        ids = []
        for i in range(limit):
            ids.append(c.request(OP["PUT"], p_put(4, 0, "p%d" % i)))
        for rid in ids:
            f = c.next_frame_for(rid)
            self.assertEqual(f.op, OP["READY"], f)
        # Every slot is taken by an upload waiting for data: any request
        # more is refused, whether the disk or memory would answer it
        # (protocol.md section 4: one rule for all).
        for op, payload in ((OP["PUT"], p_put(4, 0, "one-too-many")),
                            (OP["GET"], p_range(0, 10, "known.txt")),
                            (OP["STAT"], b"known.txt"),
                            (OP["SUBSCRIBE"], bytes(16)),
                            (OP["UNSUBSCRIBE"], b""),
                            (OP["NOTICE"], b"hi")):
            rid = c.request(op, payload)
            f = c.next_frame_for(rid)
            self.assert_error([f], "BUSY", rid)
        for rid in ids[:3]:
            c.send(frame(OP["DATA"], rid, b"abcd") +
                   frame(OP["END"], rid, p_end(4, xxh3(b"abcd"))))
            self.assertEqual(c.next_frame_for(rid).op, OP["INFO"])
        c.stat("known.txt")
        c.abort()
        # The other uploads die with the connection and leave nothing.
        self.wait_for(lambda: self.root_names() ==
                      sorted(["known.txt", "p0", "p1", "p2"]), 5,
                      "the connection's unfinished uploads to be dropped")
        self.assert_serving()

    def test_malformed_client_limit(self):
        s = self.spawn(args=["--max-clients", "4"])
        conns = [s.connect() for _ in range(4)]
        c = s.connect(hello=False)
        c.send(frame(OP["HELLO"], 0, p_hello()))
        self.assert_closes_with(c, "LIMIT")
        conns[0].close()
        # A slot frees when a client leaves.
        deadline = time.monotonic() + 5 * slow_factor()
        while True:
            try:
                s.connect().ping()
                break
            except (FspError, Closed, ConnectionError):
                self.assertLess(time.monotonic(), deadline,
                                "no slot freed after a client left")
                time.sleep(0.1)
        for k in conns[1:]:
            k.ping()


if __name__ == "__main__":
    main()
