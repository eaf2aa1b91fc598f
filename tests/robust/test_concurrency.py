#!/usr/bin/env python3
"""Concurrency semantics: concurrent PUTs of one name leave exactly one
complete version; a GET running during a replace returns the old or the new
file whole, never a mix; a GET that began before a replace or a delete
delivers the old version whole."""

import os
import struct
import threading
import time

from fsptest import (OP, ST, FsdCase, FspError, frame, main, p_end, p_put,
                     p_range, slow_factor, xxh3)

TO_END = 2**64 - 1


def pattern(tag, size):
    """A file whose every 64 KiB block names its version, so a mix shows."""
    block = (tag * (65536 // len(tag) + 1))[:65536]
    return (block * (size // 65536 + 1))[:size]


class ConcurrencyCase(FsdCase):

    def test_concurrency_puts_of_one_name(self):
        writers = 8
        for rnd in range(4):
            datas = [pattern(b"round%d-writer%d|" % (rnd, i),
                             (1 << 20) + 4096 * i + rnd) for i in range(writers)]
            conns = [self.fsd.connect() for _ in range(writers)]
            ids = [c.request(OP["PUT"], p_put(len(d), 0, "same"))
                   for c, d in zip(conns, datas)]
            for c, rid in zip(conns, ids):
                self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
            # Interleave the DATA frames of all writers.
            for pos in range(0, max(len(d) for d in datas), 65536):
                for c, rid, d in zip(conns, ids, datas):
                    if pos < len(d):
                        c.send_frame(OP["DATA"], rid, d[pos:pos + 65536])
            for c, rid, d in zip(conns, ids, datas):
                c.send_frame(OP["END"], rid, p_end(len(d), xxh3(d)))
            for c, rid, d in zip(conns, ids, datas):
                f = c.next_frame_for(rid)
                self.assertEqual(f.op, OP["INFO"], f)
                self.assertEqual(struct.unpack(">Q", f.payload[:8])[0],
                                 len(d))
            ok = datas
            k = self.fsd.connect()
            _, got = k.get("same")
            self.assertIn(got, ok, "the stored file is not one whole upload")
            # The register (STAT, LIST) describes the file that won.
            self.assertEqual(k.stat("same")[0], len(got),
                             "STAT disagrees with the file GET serves")
            self.assertEqual(k.list()[b"same"][0], len(got))
            self.wait_for(lambda: self.root_names() == ["same"], 5,
                          "temp files to go")
            for c in conns:
                c.close()

    def test_concurrency_replace_puts_same_size(self):
        writers = 6
        size = 2 << 20
        datas = [pattern(b"w%d|" % i, size) for i in range(writers)]
        errors = []
        barrier = threading.Barrier(writers)

        def write(i):
            try:
                c = self.fsd.connect()
                barrier.wait(10)
                for _ in range(3):
                    c.put("race", datas[i])
                c.close()
            except Exception as e:
                errors.append(repr(e))

        ts = [threading.Thread(target=write, args=(i,)) for i in
              range(writers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60 * slow_factor())
        self.assertFalse(errors)
        _, got = self.fsd.connect().get("race")
        self.assertIn(got, datas)
        self.wait_for(lambda: self.root_names() == ["race"], 5,
                      "temp files to go")

    def test_concurrency_no_clobber_race(self):
        for rnd in range(5):
            name = "nc%d" % rnd
            conns = [self.fsd.connect() for _ in range(6)]
            datas = [pattern(b"nc%d-%d|" % (rnd, i), 300000)
                     for i in range(6)]
            ids = [c.request(OP["PUT"], p_put(len(d), 1, name))
                   for c, d in zip(conns, datas)]
            ready = [c.next_frame_for(rid) for c, rid in zip(conns, ids)]
            for c, rid, d, r in zip(conns, ids, datas, ready):
                if r.op == OP["READY"]:
                    c.send(frame(OP["DATA"], rid, d[:150000]))
            for c, rid, d, r in zip(conns, ids, datas, ready):
                if r.op == OP["READY"]:
                    c.send(frame(OP["DATA"], rid, d[150000:]) +
                           frame(OP["END"], rid, p_end(len(d), xxh3(d))))
            winners = []
            for c, rid, d, r in zip(conns, ids, datas, ready):
                f = r if r.op != OP["READY"] else c.next_frame_for(rid)
                if f.op == OP["INFO"]:
                    winners.append(d)
                else:
                    self.assertEqual(f.status()[0], ST["EXISTS"], f)
            self.assertEqual(len(winners), 1, "no-clobber let %d uploads "
                             "through" % len(winners))
            self.assertEqual(self.fsd.connect().get(name)[1], winners[0])
            for c in conns:
                c.close()

    def test_concurrency_get_during_replace(self):
        size = 4 << 20
        versions = [pattern(b"version-%d|" % i, size) for i in range(6)]
        hashes = {xxh3(v): i for i, v in enumerate(versions)}
        c = self.fsd.connect()
        c.put("live", versions[0])
        stop = threading.Event()
        errors = []
        seen = []

        def reader():
            try:
                k = self.fsd.connect(rcvbuf=65536)
                while not stop.is_set():
                    _, data = k.get("live")
                    if xxh3(data) not in hashes:
                        errors.append("a GET returned a mix of versions")
                    seen.append(hashes.get(xxh3(data)))
            except Exception as e:
                errors.append(repr(e))

        ts = [threading.Thread(target=reader) for _ in range(4)]
        for t in ts:
            t.start()
        try:
            for i in range(1, len(versions)):
                c.put("live", versions[i])
                time.sleep(0.1)
        finally:
            stop.set()
            for t in ts:
                t.join(60 * slow_factor())
        self.assertFalse(errors, errors[:5])
        self.assertTrue(seen)

    def started_get(self, name, rcvbuf=16384):
        k = self.fsd.connect(rcvbuf=rcvbuf)
        rid = k.request(OP["GET"], p_range(0, TO_END, name))
        first = k.next_frame_for(rid)
        self.assertEqual(first.op, OP["BEGIN"])
        second = k.next_frame_for(rid)
        self.assertEqual(second.op, OP["DATA"])
        return k, rid, first, second

    def test_concurrency_get_before_replace_gets_old(self):
        old = pattern(b"old|", 8 << 20)
        new = pattern(b"new|", 3 << 20)
        c = self.fsd.connect()
        c.put("doc", old)
        k, rid, first, second = self.started_get("doc")
        c.put("doc", new)
        self.assertEqual(c.get("doc")[1], new)
        size, data = k.finish_get(rid, pre=[first, second])
        self.assertEqual(size, len(old))
        self.assertEqual(data, old)

    def test_concurrency_get_before_delete_gets_old(self):
        old = pattern(b"old|", 8 << 20)
        c = self.fsd.connect()
        c.put("doc", old)
        k, rid, first, second = self.started_get("doc")
        c.delete("doc")
        with self.assertRaises(FspError):
            c.stat("doc")
        size, data = k.finish_get(rid, pre=[first, second])
        self.assertEqual(data, old)
        self.assertEqual(self.root_names(), [])


if __name__ == "__main__":
    main()
