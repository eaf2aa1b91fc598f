"""Integration tests: a real fsd on 127.0.0.1:0 with a temporary root, driven
over TCP by fspclient. Usage: test_fsd.py --fsd PATH [unittest args]."""

import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402

CHUNK = 256 * 1024  # fsd's DATA payload for a GET (protocol allows more)


def put_pipelined(c, files, window=32):
    """Uploads files ({name: bytes}) on client c with up to window PUTs in
    flight; returns {name: ("INFO", (size, mtime_ns)) or ("ERROR", status)}
    and the names in the order their answers came."""
    rids, body, out, order = {}, {}, {}, []
    names, sent = list(files), 0
    while len(out) < len(names):
        while sent < len(names) and sent - len(out) < window:
            name = names[sent]
            rid = c.request(fc.PUT, fc.put_payload(len(files[name]), 0, name))
            rids[rid], body[rid] = name, files[name]
            sent += 1
        op, rid, p = c.read_frame()
        if op in fc.EVENT_OPS and rid == 0:
            c.events.append(fc.parse_event(op, p))
        elif op == fc.READY:
            data = body[rid]
            c.send_raw(fc.frame(fc.DATA, rid, data) + fc.frame(
                fc.END, rid, struct.pack(">QQ", len(data), fc.xxh3_64(data))))
        elif op == fc.INFO:
            out[rids[rid]] = ("INFO", struct.unpack(">Qq", p))
            order.append(rids[rid])
        elif op == fc.ERROR:
            out[rids[rid]] = ("ERROR", struct.unpack_from(">H", p)[0])
            order.append(rids[rid])
        else:
            raise AssertionError("unexpected %s" % fc.OP_NAMES.get(op, op))
    return out, order


class ServerTest(unittest.TestCase):
    """One fsd per test class; a fresh client per test."""

    args = ()
    env = None

    @classmethod
    def setUpClass(cls):
        cls.srv = fsdrun.Fsd(*cls.args, env=cls.env).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = "\n".join(cls.srv.log)
        cls.srv.cleanup()
        if rc != 0 or cls.srv.sanitizer_report():
            raise AssertionError("fsd exited with %r:\n%s" % (rc, log))

    def client(self, **kw):
        c = fc.Client("127.0.0.1", self.srv.port, timeout=20, **kw)
        self.addCleanup(c.close)
        return c

    def write_file(self, name, data):
        with open(self.srv.path(name), "wb") as f:
            f.write(data)


class BasicTest(ServerTest):
    def test_hello_announces_limits_and_caps(self):
        c = self.client()
        self.assertEqual(c.server["version"], 3)  # protocol 3: folders
        self.assertEqual(c.server["max_payload"], 1 << 20)
        self.assertEqual(c.server["max_inflight"], 64)
        self.assertEqual(c.server["caps"], fc.CAP_EVENTS | fc.CAP_NOTICE)
        self.assertTrue(c.server["agent"].startswith("fsd/"))

    def test_ping(self):
        self.assertEqual(self.client().ping(b"abc"), b"abc")

    def test_get_put_byte_identical(self):
        c = self.client()
        sizes = {"empty": 0, "one": 1, "chunk": CHUNK, "chunk1": CHUNK + 1,
                 "multi": 5 * (1 << 20) + 7}
        for name, size in sizes.items():
            data = os.urandom(size)
            size_back, _ = c.put(name, data)
            self.assertEqual(size_back, size)
            self.assertEqual(c.get(name), data, name)
            with open(self.srv.path(name), "rb") as f:
                self.assertEqual(f.read(), data, name)

    def test_chunk_boundary_frames(self):
        # A file one byte over one DATA chunk arrives as exactly two DATA
        # frames: CHUNK bytes, then 1.
        c = self.client()
        data = os.urandom(CHUNK + 1)
        c.put("edge", data)
        rid = c.request(fc.GET, fc.range_payload(0, fc.TO_END, "edge"))
        frames = c.wait(rid, fc.END)
        sizes = [len(p) for op, p in frames if op == fc.DATA]
        self.assertEqual(sizes, [CHUNK, 1])
        self.assertEqual(struct.unpack(">QQ", frames[-1][1]),
                         (CHUNK + 1, fc.xxh3_64(data)))

    def test_put_many_small_frames_byte_identical(self):
        # Thousands of small DATA frames, many per socket read and more
        # than one disk write gathers, and frames of every size around
        # them: the file holds the bytes in order.
        c = self.client()
        data = os.urandom(3 * (1 << 20) + 5)
        for chunk in (1000, 1, 65537):
            part = data if chunk != 1 else data[:5000]
            name = "small%d" % chunk
            size_back, _ = c.put(name, part, chunk=chunk)
            self.assertEqual(size_back, len(part))
            with open(self.srv.path(name), "rb") as f:
                self.assertEqual(f.read(), part, name)

    def test_put_past_several_writeback_steps(self):
        # 20 MiB: fsd starts the writeback every 8 MiB while it receives.
        c = self.client()
        data = os.urandom(20 * (1 << 20) + 3)
        size_back, _ = c.put("big", data, chunk=1 << 20)
        self.assertEqual(size_back, len(data))
        with open(self.srv.path("big"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_list_and_stat(self):
        c = self.client()
        c.put("l1", b"12345")
        c.put("l2", b"")
        files = c.list()
        self.assertEqual(files["l1"][0], 5)
        self.assertEqual(files["l2"][0], 0)
        size, mtime = c.stat("l1")
        self.assertEqual(size, 5)
        self.assertEqual(mtime, os.stat(self.srv.path("l1")).st_mtime_ns)

    def test_list_many_in_batches(self):
        c = self.client()
        names = ["batch-%04d-%s" % (i, "x" * 200) for i in range(400)]
        for n in names:
            self.write_file(n, b"z")
        fsdrun.wait_until(lambda: all(n in c.list() for n in names), 20)
        rid = c.request(fc.LIST)
        frames = c.wait(rid, fc.OK)
        batches = [p for op, p in frames if op == fc.ENTRIES]
        self.assertGreater(len(batches), 1)
        self.assertTrue(all(len(p) <= 65536 for p in batches))
        for n in names:
            os.unlink(self.srv.path(n))

    def test_stat_missing_is_not_found(self):
        with self.assertRaises(fc.FspError) as e:
            self.client().stat("no-such-file")
        self.assertEqual(e.exception.status, fc.ST_NOT_FOUND)

    def test_delete(self):
        c = self.client()
        c.put("del-me", b"x")
        c.delete("del-me")
        self.assertNotIn("del-me", c.list())
        self.assertFalse(os.path.exists(self.srv.path("del-me")))
        with self.assertRaises(fc.FspError) as e:
            c.delete("del-me")
        self.assertEqual(e.exception.status, fc.ST_NOT_FOUND)

    def test_ranged_get(self):
        c = self.client()
        data = os.urandom(3 * CHUNK + 100)
        c.put("ranged", data)
        self.assertEqual(c.get("ranged", 10, 20), data[10:30])
        self.assertEqual(c.get("ranged", CHUNK - 5, CHUNK + 10),
                         data[CHUNK - 5:2 * CHUNK + 5])
        self.assertEqual(c.get("ranged", 1000), data[1000:])
        self.assertEqual(c.get("ranged", len(data) - 3, 1000), data[-3:])
        self.assertEqual(c.get("ranged", len(data)), b"")
        with self.assertRaises(fc.FspError) as e:
            c.get("ranged", len(data) + 1)
        self.assertEqual(e.exception.status, fc.ST_RANGE)

    def test_get_small_files_around_the_whole_read_bound(self):
        # Files of at most 64 KiB are read whole with their open; larger
        # ones in chunks. Either way every range comes back as it is, with
        # END's hash (checked by the client) over the range.
        c = self.client()
        for size in (0, 1, 4096, 65535, 65536, 65537, 200000):
            data = os.urandom(size)
            name = "small-%d" % size
            c.put(name, data)
            self.assertEqual(c.get(name), data, size)
            if size >= 2:
                self.assertEqual(c.get(name, 1, size - 2), data[1:-1], size)
                self.assertEqual(c.get(name, size - 1), data[-1:], size)
            self.assertEqual(c.get(name, size), b"", size)

    def test_get_of_file_grown_behind_the_register(self):
        # Another program makes a small file big in place: the register may
        # still say small when the GET opens it; the GET sends what the
        # file holds at its open, whole.
        c = self.client()
        c.put("grows", b"s" * 100)
        big = os.urandom(300000)
        with open(self.srv.path("grows"), "r+b") as f:
            f.write(big)
        self.assertEqual(c.get("grows"), big)

    def test_hash(self):
        c = self.client()
        data = os.urandom(CHUNK * 2 + 3)
        c.put("hashed", data)
        self.assertEqual(c.hash("hashed"), (0, len(data), fc.xxh3_64(data)))
        self.assertEqual(c.hash("hashed", 5, 100),
                         (5, 100, fc.xxh3_64(data[5:105])))
        self.assertEqual(c.hash("hashed", 7, fc.TO_END),
                         (7, len(data) - 7, fc.xxh3_64(data[7:])))
        self.assertEqual(c.hash("hashed", len(data))[2], 0x2D06800538D394C2)
        with self.assertRaises(fc.FspError) as e:
            c.hash("hashed", len(data) + 1)
        self.assertEqual(e.exception.status, fc.ST_RANGE)

    def test_replace_and_no_clobber(self):
        c = self.client()
        c.put("rep", b"first")
        c.put("rep", b"second version", mode=fc.PUT_REPLACE)
        self.assertEqual(c.get("rep"), b"second version")
        with self.assertRaises(fc.FspError) as e:
            c.put("rep", b"third", mode=fc.PUT_NO_CLOBBER)
        self.assertEqual(e.exception.status, fc.ST_EXISTS)
        self.assertEqual(c.get("rep"), b"second version")
        c.put("fresh", b"new", mode=fc.PUT_NO_CLOBBER)
        self.assertEqual(c.get("fresh"), b"new")

    def test_put_bad_checksum_leaves_no_trace(self):
        c = self.client()
        c.put("keep", b"old")
        with self.assertRaises(fc.FspError) as e:
            c.put("keep", b"new data", hash_value=1234)
        self.assertEqual(e.exception.status, fc.ST_CHECKSUM)
        self.assertEqual(c.get("keep"), b"old")
        self.assertEqual(sorted(os.listdir(self.srv.root)).count("keep"), 1)
        self.assertFalse([n for n in os.listdir(self.srv.root)
                          if n.startswith(".")])

    def test_put_too_much_data_is_size(self):
        c = self.client()
        rid = c.request(fc.PUT, fc.put_payload(3, 0, "toolong"))
        c.wait(rid, fc.READY)
        c.send(fc.DATA, rid, b"12345")
        with self.assertRaises(fc.FspError) as e:
            c.wait(rid, fc.INFO)
        self.assertEqual(e.exception.status, fc.ST_SIZE)
        c.send(fc.END, rid, struct.pack(">QQ", 3, 0))
        self.assertEqual(c.ping(b"still up"), b"still up")
        self.assertNotIn("toolong", c.list())

    def test_disconnect_mid_upload_leaves_no_trace(self):
        c = self.client()
        c.put("stay", b"original")
        rid = c.request(fc.PUT, fc.put_payload(1 << 20, 0, "stay"))
        c.wait(rid, fc.READY)
        c.send(fc.DATA, rid, b"x" * 1000)
        c.close()
        c2 = self.client()
        fsdrun.wait_until(lambda: not [n for n in os.listdir(self.srv.root)
                                       if n.startswith(".fsd-tmp")])
        self.assertEqual(c2.get("stay"), b"original")
        self.assertFalse([n for n in os.listdir(self.srv.root)
                          if n.startswith(".")])

    def test_put_larger_than_free_space_refused(self):
        c = self.client()
        rid = c.request(fc.PUT, fc.put_payload(1 << 62, 0, "enormous"))
        with self.assertRaises(fc.FspError) as e:
            c.wait(rid, fc.READY)
        self.assertEqual(e.exception.status, fc.ST_NO_SPACE)
        self.assertEqual(c.ping(b"up"), b"up")

    def test_cancel_upload(self):
        c = self.client()
        rid = c.request(fc.PUT, fc.put_payload(100, 0, "canceled"))
        c.wait(rid, fc.READY)
        c.send(fc.DATA, rid, b"x" * 10)
        c.cancel(rid)
        with self.assertRaises(fc.FspError) as e:
            c.wait(rid, fc.INFO)
        self.assertEqual(e.exception.status, fc.ST_CANCELED)
        self.assertNotIn("canceled", c.list())

    def test_get_serves_old_version_when_replaced(self):
        c = self.client(max_payload=fc.MIN_PAYLOAD)
        old = os.urandom(8 << 20)
        c.put("moving", old)
        rid = c.request(fc.GET, fc.range_payload(0, fc.TO_END, "moving"))
        op, _, _ = c.next_frame(rid)
        self.assertEqual(op, fc.BEGIN)
        c2 = self.client()
        c2.put("moving", b"new and short")
        # The rest of the download is still the old file, whole.
        got = bytearray()
        while True:
            op, _, p = c.check(*c.next_frame(rid))
            if op == fc.END:
                break
            got += p
        self.assertEqual(bytes(got), old)
        self.assertEqual(struct.unpack(">QQ", p), (len(old), fc.xxh3_64(old)))
        self.assertEqual(c.get("moving"), b"new and short")

    def test_get_of_file_changed_in_place_ends_in_error(self):
        # Another program writes into the file (not replacing it) while it
        # is being sent: the download ends with ERROR IO that says so, not
        # with an END whose hash matches neither version.
        c = self.client(max_payload=fc.MIN_PAYLOAD)
        data = os.urandom(32 << 20)
        c.put("inplace", data)
        rid = c.request(fc.GET, fc.range_payload(0, fc.TO_END, "inplace"))
        op, _, _ = c.next_frame(rid)
        self.assertEqual(op, fc.BEGIN)
        with open(self.srv.path("inplace"), "r+b") as f:
            f.seek(len(data) - 4096)
            f.write(b"x" * 4096)
        got = 0
        with self.assertRaises(fc.FspError) as e:
            while True:
                op, _, p = c.check(*c.next_frame(rid))
                if op == fc.END:
                    break
                got += len(p)
        self.assertEqual(e.exception.status, fc.ST_IO)
        self.assertIn("changed in place", e.exception.message)
        self.assertLess(got, len(data))
        # The connection goes on; a new download gets the new contents.
        self.assertEqual(fc.xxh3_64(c.get("inplace")),
                         fc.xxh3_64(data[:-4096] + b"x" * 4096))

    def test_stat_answer_not_held_back_by_big_get(self):
        c = self.client()
        c.put("huge", os.urandom(16 << 20))
        c.put("small", b"s")
        gid = c.request(fc.GET, fc.range_payload(0, fc.TO_END, "huge"))
        sid = c.request(fc.STAT, b"small")
        data_before = 0
        while True:
            op, fid, p = c.read_frame()
            if fid == sid:
                self.assertEqual(op, fc.INFO)
                break
            if op == fc.DATA:
                data_before += 1
        # Only DATA already on its way when the STAT arrived may come first:
        # a GET keeps one chunk queued and one being read.
        self.assertLessEqual(data_before, 3)
        c.cancel(gid)
        while True:
            op, fid, p = c.read_frame()
            if fid == gid and op in (fc.ERROR, fc.END):
                break

    def test_answers_gathered_behind_a_full_socket_all_arrive(self):
        # The client reads nothing while a GET fills the socket, so a DATA
        # frame waits half sent; meanwhile more than one write's worth of
        # STAT answers pile up behind it. All must arrive, in order.
        c = self.client()
        data = os.urandom(16 << 20)
        c.put("full", data)
        name = "f" * 200
        c.put(name, b"12345")
        gid = c.request(fc.GET, fc.range_payload(0, fc.TO_END, "full"))
        time.sleep(0.3)
        sids = [c.new_id() for _ in range(3000)]
        c.send_raw(b"".join(fc.frame(fc.STAT, sid, name.encode())
                            for sid in sids))
        self.assertEqual(c.read_get(gid), data)
        for sid in sids:
            op, fid, p = c.next_frame(sid)
            self.assertEqual((op, fid), (fc.INFO, sid))
            self.assertEqual(struct.unpack(">Qq", p[:16])[0], 5)

    def test_bad_names(self):
        c = self.client()
        for name in (b"../etc/passwd", b"a/b", b".hidden", b"..", b"\x01x",
                     b"\xff\xfe"):
            with self.assertRaises(fc.FspError) as e:
                c.stat(name)
            self.assertEqual(e.exception.status, fc.ST_BAD_NAME, name)
            with self.assertRaises(fc.FspError) as e:
                c.get(name)
            self.assertEqual(e.exception.status, fc.ST_BAD_NAME, name)
        self.assertEqual(c.ping(b"ok"), b"ok")

    def test_symlink_neither_listed_nor_followed(self):
        outside = os.path.join(self.srv.tmp, "secret")
        with open(outside, "wb") as f:
            f.write(b"secret")
        os.symlink(outside, self.srv.path("link"))
        c = self.client()
        time.sleep(0.2)
        self.assertNotIn("link", c.list())
        with self.assertRaises(fc.FspError) as e:
            c.get("link")
        self.assertEqual(e.exception.status, fc.ST_NOT_FOUND)
        os.unlink(self.srv.path("link"))

    def test_unknown_opcode_keeps_connection(self):
        c = self.client()
        c.send(0x7E, 5, b"whatever")
        with self.assertRaises(fc.FspError) as e:
            c.wait(5, fc.OK)
        self.assertEqual(e.exception.status, fc.ST_UNKNOWN_OP)
        self.assertEqual(c.ping(b"alive"), b"alive")

    def test_malformed_and_out_of_sequence(self):
        c = self.client()
        c.send(fc.GET, 9, b"\x00\x01")  # too short for its layout
        with self.assertRaises(fc.FspError) as e:
            c.wait(9, fc.END)
        self.assertEqual(e.exception.status, fc.ST_BAD_REQUEST)
        # Not requests: answered on id 0, which ends no request.
        c.send(fc.OK, 10)  # a server-only opcode
        with self.assertRaises(fc.FspError) as e:
            c.wait(0, fc.OK)
        self.assertEqual(e.exception.status, fc.ST_PROTOCOL)
        c.send(fc.END, 11, bytes(16))  # END without an upload
        with self.assertRaises(fc.FspError) as e:
            c.wait(0, fc.OK)
        self.assertEqual(e.exception.status, fc.ST_PROTOCOL)
        self.assertEqual(c.ping(b"alive"), b"alive")

    def test_broken_framing_closes(self):
        c = self.client()
        c.send_raw(b"\x00" * 12)
        op, rid, p = c.read_frame()
        self.assertEqual((op, rid), (fc.ERROR, 0))
        self.assertEqual(struct.unpack_from(">H", p)[0], fc.ST_PROTOCOL)
        with self.assertRaises(fc.ProtocolError):
            c.read_frame()

    def test_first_frame_must_be_hello(self):
        c = self.client(hello=False)
        c.send(fc.LIST, 1)
        op, rid, p = c.read_frame()
        self.assertEqual((op, rid), (fc.ERROR, 0))
        self.assertEqual(struct.unpack_from(">H", p)[0], fc.ST_PROTOCOL)
        with self.assertRaises(fc.ProtocolError):
            c.read_frame()

    def test_bye(self):
        c = self.client()
        c.bye()

    def test_events_reach_two_subscribers(self):
        a, b, w = self.client(), self.client(), self.client()
        ea, sa = a.subscribe()
        eb, sb = b.subscribe()
        self.assertEqual(ea, eb)
        w.put("ev-file", b"12345")
        w.put("ev-file", b"123")
        w.delete("ev-file")
        for sub in (a, b):
            got = [sub.next_event() for _ in range(3)]
            got = [(e.type, e.kind, e.name, e.size) for e in got]
            self.assertEqual(got, [
                ("EVENT", fc.EV_ADDED, "ev-file", 5),
                ("EVENT", fc.EV_REPLACED, "ev-file", 3),
                ("EVENT", fc.EV_REMOVED, "ev-file", 0)])
        # Replay after a reconnect: since = the seq before the three events.
        c = self.client()
        epoch, seq = c.subscribe(ea, sa)
        got = [c.next_event() for _ in range(3)]
        self.assertEqual([e.seq for e in got], [sa + 1, sa + 2, sa + 3])
        # A different epoch means a restart: RESYNC.
        d = self.client()
        d.subscribe(ea ^ 1, 1)
        self.assertEqual(d.next_event().type, "RESYNC")

    def test_notice_relayed(self):
        a, b = self.client(), self.client()
        a.subscribe()
        b.subscribe()
        b.notice("hello all")
        for sub in (a, b):
            e = sub.next_event()
            self.assertEqual((e.type, e.text), ("NOTIFY", "hello all"))
        a.unsubscribe()
        b.notice("again")
        self.assertEqual(b.next_event().text, "again")
        a.ping()
        self.assertFalse(a.events)

    def test_longest_notice_reaches_many_subscribers_intact(self):
        subs = [self.client() for _ in range(20)]
        for s in subs:
            s.subscribe()
        text = "".join(chr(ord("a") + i % 26) for i in range(4096))
        subs[0].notice(text)
        subs[1].notice("short")

        # The server is shared with other tests: an EVENT of a change they
        # made may still come in between; this test is about the notices.
        def next_notify(s):
            e = s.next_event()
            while e.type == "EVENT":
                e = s.next_event()
            return e

        for s in subs:
            got = [next_notify(s) for _ in range(2)]
            self.assertEqual([(e.type, e.text) for e in got],
                             [("NOTIFY", text), ("NOTIFY", "short")])
        # After a quiet while (fsd drops the output buffers it kept for the
        # next broadcast) events still reach everyone.
        time.sleep(2.5)
        subs[2].notice("later")
        for s in subs:
            self.assertEqual(next_notify(s).text, "later")

    def test_outside_change_appears_in_list_and_events(self):
        sub = self.client()
        sub.subscribe()
        self.write_file("outside", b"from another program")
        e = sub.next_event()
        while e.name != "outside":
            e = sub.next_event()
        self.assertEqual((e.type, e.kind), ("EVENT", fc.EV_ADDED))
        c = self.client()
        self.assertTrue(fsdrun.wait_until(
            lambda: c.list().get("outside", (0,))[0] == 20))
        os.unlink(self.srv.path("outside"))
        e = sub.next_event()
        while e.name != "outside" or e.kind != fc.EV_REMOVED:
            e = sub.next_event()
        self.assertTrue(fsdrun.wait_until(lambda: "outside" not in c.list()))

    def test_many_clients_at_once(self):
        errors = []

        def worker(i):
            try:
                with fc.Client("127.0.0.1", self.srv.port, timeout=30) as c:
                    data = os.urandom(1000 + i * 97)
                    c.put("many-%d" % i, data)
                    if c.get("many-%d" % i) != data:
                        errors.append("mismatch %d" % i)
                    c.list()
                    c.delete("many-%d" % i)
            except Exception as e:  # noqa: BLE001 - collected for the assert
                errors.append("%d: %r" % (i, e))

        threads = [threading.Thread(target=worker, args=(i,))
                   for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_pipelined_requests(self):
        c = self.client()
        c.put("pipe", b"p" * 10)
        ids = [c.request(fc.STAT, b"pipe") for _ in range(50)]
        for rid in reversed(ids):
            op, p = c.wait(rid, fc.INFO)[-1]
            self.assertEqual(struct.unpack(">Qq", p)[0], 10)

    def test_many_pipelined_answers_arrive_whole_and_in_order(self):
        # Answers gathered in one go grow past any first buffer size and
        # past one write's worth: every one must arrive, in order.
        c = self.client()
        names = ["o%03d-%s" % (i, "n" * (i % 200)) for i in range(30)]
        for i, name in enumerate(names):
            c.put(name, b"x" * i)
        batch = []
        for k in range(1500):
            rid = c.new_id()
            batch.append((rid, k % len(names)))
        c.send_raw(b"".join(fc.frame(fc.STAT, rid, names[i].encode())
                            for rid, i in batch))
        for rid, i in batch:
            op, fid, p = c.read_frame()
            self.assertEqual((op, fid), (fc.INFO, rid))
            self.assertEqual(struct.unpack(">Qq", p[:16])[0], i)

    def test_concurrent_delete_and_put_keep_register_exact(self):
        # A DELETE and an upload of one name from two clients, racing: once
        # both are answered, LIST and STAT say what the disk holds.
        a, b, c = self.client(), self.client(), self.client()
        b.put("race", b"first")
        for i in range(40):
            data = b"v%d" % i
            pid = b.request(fc.PUT, fc.put_payload(len(data), 0, "race"))
            b.wait(pid, fc.READY)
            b.send(fc.DATA, pid, data)
            did = a.request(fc.DELETE, b"race")
            b.send(fc.END, pid, struct.pack(">QQ", len(data),
                                            fc.xxh3_64(data)))
            b.wait(pid, fc.INFO)
            try:
                a.wait(did, fc.OK)
            except fc.FspError as e:
                self.assertEqual(e.status, fc.ST_NOT_FOUND)
            on_disk = os.path.exists(self.srv.path("race"))
            self.assertEqual("race" in c.list(), on_disk, "round %d" % i)
            if on_disk:
                self.assertEqual(c.stat("race")[0],
                                 os.path.getsize(self.srv.path("race")))
            else:
                b.put("race", b"again")

    def test_duplicate_id_in_flight(self):
        c = self.client()
        rid = c.request(fc.PUT, fc.put_payload(1, 0, "dup"))
        c.wait(rid, fc.READY)
        c.send(fc.STAT, rid, b"dup")
        # On id 0: an ERROR on rid would end the upload in our eyes, and
        # its INFO would then be a second final frame.
        with self.assertRaises(fc.FspError) as e:
            c.wait(0, fc.INFO)
        self.assertEqual(e.exception.status, fc.ST_PROTOCOL)
        c.send(fc.DATA, rid, b"x")
        c.send(fc.END, rid, struct.pack(">QQ", 1, fc.xxh3_64(b"x")))
        self.assertEqual(c.wait(rid, fc.INFO)[-1][0], fc.INFO)


    def test_changed_file_not_served_with_old_hash(self):
        # Whole-file hashes are cached for sendfile(); a file rewritten in
        # place, even with its old size and mtime put back, must get its
        # new hash.
        data = os.urandom(CHUNK * 3)
        self.write_file("cached", data)
        c = self.client()
        fsdrun.wait_until(lambda: "cached" in c.list())
        time.sleep(2.2)  # files changed in the last 2 s are not cached
        self.assertEqual(c.get("cached"), data)
        self.assertEqual(c.get("cached"), data)
        st = os.stat(self.srv.path("cached"))
        data2 = os.urandom(len(data))
        with open(self.srv.path("cached"), "r+b") as f:
            f.write(data2)
        os.utime(self.srv.path("cached"), ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(c.get("cached"), data2)
        self.assertEqual(c.get("cached", 5, 10), data2[5:15])


class SpecEdgesTest(ServerTest):
    """The edges protocol.md settles, each checked against the real fsd."""

    def test_every_replace_is_one_event_in_commit_order(self):
        # Regression: a commit whose size and mtime_ns equalled the previous
        # one's (the file system's clock ticks coarsely) gave no EVENT, and
        # 32 pipelined replaces gave 1-2 events. 1,000 pipelined replaces of
        # one name with same-size content: 1,000 EVENTs, consecutive seqs,
        # in the order of the INFOs (the commit order).
        n, window, name = 1000, 32, "same-size"
        sub, w = self.client(), self.client()
        _, seq0 = sub.subscribe()
        infos, next_put, ready, bodies, last = [], 0, {}, {}, None
        while len(infos) < n:
            while next_put < n and next_put - len(infos) < window:
                body = b"%08d" % next_put
                rid = w.request(fc.PUT, fc.put_payload(len(body), 0, name))
                ready[rid] = body
                next_put += 1
            op, rid, p = w.read_frame()
            if op == fc.READY:
                body = ready.pop(rid)
                bodies[rid] = body
                w.send(fc.DATA, rid, body)
                w.send(fc.END, rid, struct.pack(">QQ", len(body),
                                                fc.xxh3_64(body)))
            elif op == fc.INFO:
                infos.append(struct.unpack(">Qq", p))
                last = bodies.pop(rid)
            else:
                self.fail("unexpected %s %r" % (fc.OP_NAMES.get(op), p))
        events = [sub.next_event() for _ in range(n)]
        self.assertEqual([e.type for e in events], ["EVENT"] * n)
        self.assertEqual([e.seq for e in events],
                         list(range(seq0 + 1, seq0 + n + 1)))
        self.assertEqual([(e.size, e.mtime_ns) for e in events], infos)
        self.assertEqual({e.name for e in events}, {name})
        self.assertEqual([e.kind for e in events[1:]],
                         [fc.EV_REPLACED] * (n - 1))
        # Several commits shared an mtime: that is what the test is about.
        self.assertLess(len({m for _, m in infos}), n)
        # READYs may come out of request order (each waits on its own open),
        # so the file holds the body of the last commit, not of the last PUT.
        self.assertEqual(w.get(name), last)

    def test_outside_replace_keeping_size_and_mtime_is_an_event(self):
        # Another program replaces a file by one of the same size and mtime
        # (as rsync or a restore from backup does): the inode and ctime
        # tell the versions apart.
        sub, c = self.client(), self.client()
        self.write_file("kept-stamp", b"first version")
        self.assertTrue(fsdrun.wait_until(lambda: "kept-stamp" in c.list()))
        st = os.stat(self.srv.path("kept-stamp"))
        _, seq = sub.subscribe()
        tmp = self.srv.path(".kept-stamp.new")
        with open(tmp, "wb") as f:
            f.write(b"other version")
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.rename(tmp, self.srv.path("kept-stamp"))
        e = sub.next_event()
        self.assertEqual((e.type, e.kind, e.name, e.size, e.mtime_ns),
                         ("EVENT", fc.EV_REPLACED, "kept-stamp", 13,
                          st.st_mtime_ns))
        self.assertEqual(e.seq, seq + 1)
        self.assertEqual(c.get("kept-stamp"), b"other version")

    def test_malformed_cancel_does_not_end_a_running_get(self):
        # Regression: ERROR with the GET's id, then the GET's END as well.
        c = self.client(max_payload=fc.MIN_PAYLOAD)
        data = os.urandom(8 << 20)
        c.put("cancel-me-not", data)
        rid = c.request(fc.GET, fc.range_payload(0, fc.TO_END,
                                                 "cancel-me-not"))
        op, _, _ = c.next_frame(rid)
        self.assertEqual(op, fc.BEGIN)
        c.send(fc.CANCEL, rid, b"\x00")
        with self.assertRaises(fc.FspError) as e:
            c.wait(0, fc.OK)
        self.assertEqual(e.exception.status, fc.ST_BAD_REQUEST)
        got = []
        while True:
            op, _, p = c.check(*c.next_frame(rid))
            if op == fc.END:
                break
            got.append(p)
        self.assertEqual(b"".join(got), data)
        self.assertEqual(c.ping(b"alive"), b"alive")

    def test_data_frames_within_client_max_payload(self):
        # fspclient refuses any frame over the max_payload it announced.
        c = self.client(max_payload=fc.MIN_PAYLOAD)
        data = os.urandom(5 * fc.MIN_PAYLOAD + 7)
        c.put("small-frames", data)
        rid = c.request(fc.GET, fc.range_payload(0, fc.TO_END,
                                                 "small-frames"))
        frames = c.wait(rid, fc.END)
        sizes = [len(p) for op, p in frames if op == fc.DATA]
        self.assertEqual(sum(sizes), len(data))
        self.assertLessEqual(max(sizes), fc.MIN_PAYLOAD)

    def test_hello_below_min_payload_refused(self):
        # Regression: max_payload 1,000 was accepted, then ignored.
        c = self.client(hello=False)
        c.send(fc.HELLO, 0, fc.hello_payload(max_payload=1000))
        op, rid, p = c.read_frame()
        self.assertEqual((op, rid), (fc.ERROR, 0))
        self.assertEqual(struct.unpack_from(">H", p)[0], fc.ST_BAD_REQUEST)
        with self.assertRaises(fc.ProtocolError):
            c.read_frame()

    def test_subscribed_comes_before_the_replay(self):
        w, sub = self.client(), self.client()
        w.put("replay-base", b"x")  # since 0 would ask for no replay
        epoch, seq = w.subscribe()
        self.assertGreater(seq, 0)
        for i in range(3):
            w.put("replayed", b"v" * (i + 1))
        rid = sub.request(fc.SUBSCRIBE, struct.pack(">QQ", epoch, seq))
        frames = [sub.read_frame() for _ in range(4)]
        self.assertEqual([(op, r) for op, r, _ in frames],
                         [(fc.SUBSCRIBED, rid)] + [(fc.EVENT, 0)] * 3)
        self.assertEqual([fc.parse_event(op, p).seq for op, _, p in
                          frames[1:]], [seq + 1, seq + 2, seq + 3])
        # Epoch 0 says no seq is known: RESYNC, after SUBSCRIBED.
        other = self.client()
        rid = other.request(fc.SUBSCRIBE, struct.pack(">QQ", 0, seq))
        frames = [other.read_frame() for _ in range(2)]
        self.assertEqual([(op, r) for op, r, _ in frames],
                         [(fc.SUBSCRIBED, rid), (fc.RESYNC, 0)])


class CopyPathTest(ServerTest):
    """GET through pread + write instead of sendfile()."""

    env = {"FSD_SENDFILE": "0"}
    test_get_put_byte_identical = BasicTest.test_get_put_byte_identical
    test_chunk_boundary_frames = BasicTest.test_chunk_boundary_frames
    test_ranged_get = BasicTest.test_ranged_get
    test_get_serves_old_version_when_replaced = \
        BasicTest.test_get_serves_old_version_when_replaced
    test_stat_answer_not_held_back_by_big_get = \
        BasicTest.test_stat_answer_not_held_back_by_big_get
    test_many_clients_at_once = BasicTest.test_many_clients_at_once


class NoWritebackTest(ServerTest):
    """Uploads whose pages are left for the fsync before the commit."""

    env = {"FSD_WRITEBACK": "0"}
    test_get_put_byte_identical = BasicTest.test_get_put_byte_identical
    test_put_many_small_frames_byte_identical = \
        BasicTest.test_put_many_small_frames_byte_identical
    test_put_bad_checksum_leaves_no_trace = \
        BasicTest.test_put_bad_checksum_leaves_no_trace
    test_put_past_several_writeback_steps = \
        BasicTest.test_put_past_several_writeback_steps


class SlowWatcherTest(ServerTest):
    """The folder watcher's stat jobs hand their results back late, as a
    worker thread descheduled right after its stat would."""

    env = {"FSD_WATCH_DELAY_MS": "300", "FSD_RESCAN_MS": "100"}

    def test_late_watcher_look_does_not_bring_back_deleted_file(self):
        # Each name is uploaded and deleted while the watcher's look at the
        # upload is still on its way back. That look saw the file; it must
        # not put the name back into the register after the DELETE.
        s, c = self.client(), self.client()
        s.subscribe()
        names = ["gone-%d" % i for i in range(6)]
        for name in names:
            c.put(name, b"short-lived")
            c.delete(name)
        # A file written from outside is reported once the watcher looked at
        # it, after its looks at the names above began.
        self.write_file("marker", b"m")
        seen = {n: [] for n in names}
        while True:
            ev = s.next_event()
            if ev.name in seen:
                seen[ev.name].append(ev.kind)
            if ev.name == "marker":
                break
        for name in names:
            self.assertEqual(seen[name], [fc.EV_ADDED, fc.EV_REMOVED], name)
            with self.assertRaises(fc.FspError) as cm:
                c.stat(name)
            self.assertEqual(cm.exception.status, fc.ST_NOT_FOUND, name)
        listed = c.list()
        self.assertEqual(sorted(listed), ["marker"])


class ReadOnlyTest(ServerTest):
    args = ("--read-only",)

    def test_read_only(self):
        self.write_file("ro", b"data")
        c = self.client()
        self.assertTrue(c.server["caps"] & fc.CAP_READ_ONLY)
        fsdrun.wait_until(lambda: "ro" in c.list())
        self.assertEqual(c.get("ro"), b"data")
        for call in (lambda: c.put("new", b"x"), lambda: c.delete("ro")):
            with self.assertRaises(fc.FspError) as e:
                call()
            self.assertEqual(e.exception.status, fc.ST_READ_ONLY)
        self.assertTrue(os.path.exists(self.srv.path("ro")))


class NoFsyncTest(ServerTest):
    args = ("--no-fsync",)

    def test_no_fsync_commits_atomically_and_says_so(self):
        # Uploads still land whole, by rename, and replace atomically; the
        # server says at start that it does not wait for the disk.
        self.assertTrue(any("without fsync" in line
                            for line in self.srv.log), self.srv.log[:5])
        c = self.client()
        data = os.urandom(3 << 20)
        c.put("nf", data)
        self.assertEqual(c.get("nf"), data)
        c.put("nf", b"second")
        self.assertEqual(c.get("nf"), b"second")
        with open(self.srv.path("nf"), "rb") as f:
            self.assertEqual(f.read(), b"second")
        self.assertEqual([n for n in os.listdir(self.srv.root)
                          if n.startswith(".")], [])


class BurstTest(ServerTest):
    """Many uploads committed at once share their flushes to disk."""

    def check_burst(self):
        # 300 small files pipelined on one connection: every one answered
        # with INFO, stored whole, and announced by exactly one EVENT with
        # the version its INFO gave; no temp file left. (Across names the
        # events need not follow the INFOs: the watcher may report a new
        # file first.)
        sub, c = self.client(), self.client()
        _, seq0 = sub.subscribe()
        files = {"burst-%03d" % i: os.urandom(4096) for i in range(300)}
        out, order = put_pipelined(c, files, window=62)
        self.assertEqual({v[0] for v in out.values()}, {"INFO"})
        self.assertEqual(sorted(order), sorted(files))
        for name, data in files.items():
            with open(self.srv.path(name), "rb") as f:
                self.assertEqual(f.read(), data, name)
        c.put("marker", b"m")
        events = []
        while not events or events[-1].name != "marker":
            events.append(sub.next_event())
        events.pop()
        self.assertEqual(sorted(e.name for e in events), sorted(files))
        self.assertEqual([e.seq for e in events],
                         list(range(seq0 + 1, seq0 + len(files) + 1)))
        self.assertEqual({e.name: (e.size, e.mtime_ns) for e in events},
                         {n: v[1] for n, v in out.items()})
        self.assertEqual({e.kind for e in events}, {fc.EV_ADDED})
        self.assertEqual([n for n in os.listdir(self.srv.root)
                          if n.startswith(".")], [])

    def test_burst_of_small_uploads_each_answered_once_stored(self):
        self.check_burst()

    test_every_replace_is_one_event_in_commit_order = \
        SpecEdgesTest.test_every_replace_is_one_event_in_commit_order


class NoFsyncBurstTest(BurstTest):
    """The same burst without flushes (--no-fsync)."""

    args = ("--no-fsync",)


class FailingFlushTest(ServerTest):
    """A disk whose flush fails for the uploads of one name, as a failing
    disk's would (FSD_FAIL_FSYNC, undocumented, for tests)."""

    env = {"FSD_FAIL_FSYNC": "victim"}

    def test_failed_flush_fails_that_upload_alone_and_keeps_old_file(self):
        self.write_file("victim", b"old version")
        sub, c = self.client(), self.client()
        self.assertTrue(fsdrun.wait_until(lambda: "victim" in c.list()))
        before = c.stat("victim")
        _, seq0 = sub.subscribe()
        files = {"ok-%02d" % i: os.urandom(1000) for i in range(10)}
        files["victim"] = b"new version, never confirmed"
        files.update({"ok-%02d" % i: os.urandom(1000) for i in range(10, 20)})
        out, order = put_pipelined(c, files, window=30)
        self.assertEqual(out.pop("victim"), ("ERROR", fc.ST_IO))
        self.assertEqual({v[0] for v in out.values()}, {"INFO"})
        # The old file is intact, the register still holds it, and no temp
        # file is left.
        with open(self.srv.path("victim"), "rb") as f:
            self.assertEqual(f.read(), b"old version")
        self.assertEqual(c.stat("victim"), before)
        self.assertEqual(c.get("victim"), b"old version")
        self.assertEqual([n for n in os.listdir(self.srv.root)
                          if n.startswith(".")], [])
        # One EVENT per stored file, none for the failed one.
        events = [sub.next_event() for _ in out]
        self.assertEqual(sorted(e.name for e in events), sorted(out))
        self.assertEqual([e.seq for e in events],
                         list(range(seq0 + 1, seq0 + len(out) + 1)))
        self.assertEqual(c.ping(b"still up"), b"still up")
        self.assertTrue(fsdrun.wait_until(lambda: any(
            "flush of victim to disk failed" in line
            for line in self.srv.log)))


class FailingFolderFlushTest(ServerTest):
    """A disk whose flush of the folder fails (FSD_FAIL_FSYNC=.): the
    renames are done but not durable, so no upload is confirmed."""

    env = {"FSD_FAIL_FSYNC": "."}

    def test_upload_not_confirmed_until_folder_flushed(self):
        sub, c = self.client(), self.client()
        _, seq0 = sub.subscribe()
        files = {"nd-%02d" % i: os.urandom(500) for i in range(12)}
        out, _ = put_pipelined(c, files, window=12)
        self.assertEqual(out, {n: ("ERROR", fc.ST_IO) for n in files})
        # The files are in place all the same, and the register follows
        # the disk: one EVENT each, and STAT finds them.
        events = [sub.next_event() for _ in files]
        self.assertEqual(sorted(e.name for e in events), sorted(files))
        self.assertEqual([e.seq for e in events],
                         list(range(seq0 + 1, seq0 + len(files) + 1)))
        for name, data in files.items():
            self.assertEqual(c.get(name), data)
        self.assertTrue(fsdrun.wait_until(lambda: any(
            "flush of the folder failed" in line for line in self.srv.log)))

    def test_no_fsync_confirms_without_flushing(self):
        with fsdrun.Fsd("--no-fsync", env=self.env) as srv:
            c = fc.Client("127.0.0.1", srv.port, timeout=20)
            self.addCleanup(c.close)
            self.assertEqual(c.put("nf", b"no flush")[0], 8)


class LimitsTest(ServerTest):
    args = ("--max-clients", "2", "--idle-timeout", "1")

    def test_max_clients(self):
        a, b = self.client(), self.client()
        a.subscribe()
        b.subscribe()  # subscribed: not idle
        c = self.client(hello=False)
        c.send(fc.HELLO, 0, fc.hello_payload())
        op, rid, p = c.read_frame()
        self.assertEqual(op, fc.ERROR)
        self.assertEqual(struct.unpack_from(">H", p)[0], fc.ST_LIMIT)

    def test_idle_timeout(self):
        time.sleep(0.3)  # let other tests' clients go
        c = self.client()
        op, rid, p = c.read_frame()  # blocks until the server gives up
        self.assertEqual((op, rid), (fc.ERROR, 0))
        self.assertEqual(struct.unpack_from(">H", p)[0], fc.ST_TIMEOUT)


class StartStopTest(unittest.TestCase):
    def test_stale_temp_removed_and_files_indexed(self):
        srv = fsdrun.Fsd()
        os.makedirs(srv.root)
        for name, data in ((".fsd-tmp-0123456789abcdef", b"junk"),
                           ("kept", b"k"), (".dotfile", b"d")):
            with open(srv.path(name), "wb") as f:
                f.write(data)
        with srv:
            c = fc.Client("127.0.0.1", srv.port)
            self.assertEqual(set(c.list()), {"kept"})
            c.close()
            self.assertFalse(os.path.exists(
                srv.path(".fsd-tmp-0123456789abcdef")))
            self.assertTrue(os.path.exists(srv.path(".dotfile")))

    def test_shutdown_sends_bye_and_drops_uploads(self):
        srv = fsdrun.Fsd().start()
        try:
            c = fc.Client("127.0.0.1", srv.port)
            rid = c.request(fc.PUT, fc.put_payload(1 << 20, 0, "partial"))
            c.wait(rid, fc.READY)
            c.send(fc.DATA, rid, b"y" * 1000)
            c.ping()
            srv.proc.send_signal(15)
            seen = []
            while True:
                op, fid, p = c.read_frame()
                seen.append((op, fid))
                if op == fc.BYE:
                    self.assertEqual(fid, 0)
                    self.assertEqual(struct.unpack_from(">H", p)[0],
                                     fc.ST_SHUTDOWN)
                    break
            self.assertIn((fc.ERROR, rid), seen)
            c.close()
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(os.listdir(srv.root), [])
        finally:
            srv.stop()
            srv.cleanup()

    def test_ipv6_literal(self):
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        with fsdrun.Fsd(listen="[::1]:0") as srv:
            self.assertEqual(srv.host, "::1")
            sock = socket.create_connection(("::1", srv.port), timeout=10)
            c = fc.Client(sock=sock)
            self.assertEqual(c.ping(b"v6"), b"v6")
            c.close()

    def test_sigint_stops_cleanly(self):
        srv = fsdrun.Fsd().start()
        try:
            c = fc.Client("127.0.0.1", srv.port)
            c.subscribe()
            srv.proc.send_signal(2)
            op, rid, p = c.read_frame()
            self.assertEqual((op, rid), (fc.BYE, 0))
            c.close()
            self.assertEqual(srv.proc.wait(15), 0)
        finally:
            srv.stop()
            srv.cleanup()

    def test_unread_answers_pause_reading(self):
        # A client that sends requests without reading the answers: fsd
        # stops reading from it instead of queueing answers without bound,
        # and every answer arrives once the client reads.
        with fsdrun.Fsd() as srv:
            c = fc.Client("127.0.0.1", srv.port)
            c.put("s", b"x")
            info = fc.frame(fc.INFO, 1, struct.pack(">Qq", *c.stat("s")))
            base = srv.rss_kib()
            n = 800000
            frame = fc.frame(fc.STAT, 1, b"s")
            done = threading.Event()

            def flood():
                try:
                    c.sock.sendall(frame * n)
                finally:
                    done.set()

            t = threading.Thread(target=flood, daemon=True)
            t.start()
            # The flood (10 MB of requests, 22 MB of answers) cannot finish
            # while nobody reads: fsd stopped reading.
            self.assertFalse(done.wait(2.0))
            self.assertLess(srv.rss_kib() - base, 24 * 1024)
            want = len(info) * n
            got = bytearray(c._buf)
            while len(got) < want:
                chunk = c.sock.recv(1 << 20)
                self.assertTrue(chunk)
                got += chunk
            self.assertEqual(bytes(got[:want]), info * n)
            c._buf = got[want:]
            t.join(10)
            self.assertTrue(done.is_set())
            self.assertEqual(c.ping(b"end"), b"end")
            c.close()

    def test_usage_errors_exit_2(self):
        import subprocess
        for args in (["--bogus"], ["--listen", "nonsense"],
                     ["--log-level", "loud"], ["--max-clients", "x"]):
            p = subprocess.run([fsdrun.FSD] + args, capture_output=True,
                               timeout=10)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(len(p.stderr.decode().strip().splitlines()), 1)


def main():
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--fsd":
        fsdrun.FSD = os.path.abspath(args[1])
        args = args[2:]
    if not fsdrun.FSD:
        sys.exit("usage: test_fsd.py --fsd PATH [unittest args]")
    socket.setdefaulttimeout(30)
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)


if __name__ == "__main__":
    main()
