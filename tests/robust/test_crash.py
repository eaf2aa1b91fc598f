#!/usr/bin/env python3
"""Crash: fsd killed with SIGKILL in the middle of an upload that replaces a
file. After a restart on the same root the old file is intact and listed, no
temp file is listed, and stale temp files are gone from the folder."""

import os
import struct
import time

from fsptest import OP, ST, FsdCase, main, p_put, xxh3


class CrashCase(FsdCase):

    def test_crash_kill9_mid_replace(self):
        v1 = os.urandom(1 << 20)
        c = self.fsd.connect()
        c.put("doc.bin", v1)
        # A user's own dotfile in the folder is not a temp file: it must
        # survive the start-up clean-up.
        with open(os.path.join(self.root, ".keep"), "wb") as f:
            f.write(b"mine\n")
        before = set(self.root_names())

        rid = c.request(OP["PUT"], p_put(8 << 20, 0, "doc.bin"))
        self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
        chunk = os.urandom(65536)
        for _ in range(48):
            c.send_frame(OP["DATA"], rid, chunk)
        c.ping()  # everything before it has been read by the server
        # 3 MiB are on their way to disk. Wait until the bytes have reached
        # the file system (visible as a temp file, unless the server uses an
        # unnamed O_TMPFILE), then kill.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and \
                set(self.root_names()) == before:
            time.sleep(0.05)
        temps = set(self.root_names()) - before
        self.kill9(self.fsd)
        c.close()

        # The folder as the crash left it: the old file is still in place.
        with open(os.path.join(self.root, "doc.bin"), "rb") as f:
            self.assertEqual(xxh3(f.read()), xxh3(v1))

        s = self.spawn()
        k = s.connect()
        self.assertEqual(sorted(k.list()), [b"doc.bin"])
        self.assertEqual(k.stat("doc.bin")[0], len(v1))
        self.assertEqual(k.get("doc.bin")[1], v1)
        self.wait_for(lambda: set(self.root_names()) == before, 5,
                      "stale temp files %r to be removed (folder: %r)" %
                      (sorted(temps), self.root_names()))
        # The server works normally on the recovered folder.
        v2 = os.urandom(300000)
        k.put("doc.bin", v2)
        self.assertEqual(k.get("doc.bin")[1], v2)

    def test_crash_kill9_mid_new_file(self):
        c = self.fsd.connect()
        rid = c.request(OP["PUT"], p_put(4 << 20, 1, "fresh.bin"))
        self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
        for _ in range(16):
            c.send_frame(OP["DATA"], rid, os.urandom(65536))
        c.ping()
        time.sleep(0.3)
        self.kill9(self.fsd)
        c.close()
        s = self.spawn()
        k = s.connect()
        self.assertEqual(k.list(), {})
        self.wait_for(lambda: self.root_names() == [], 5,
                      "stale temp files to be removed (folder: %r)" %
                      self.root_names())

    def test_crash_sigterm_mid_replace(self):
        # An orderly stop in the middle of an upload: the uploader is told
        # (BYE SHUTDOWN), fsd exits 0, the old file is whole, no temp left.
        v1 = os.urandom(1 << 20)
        c = self.fsd.connect()
        c.put("doc.bin", v1)
        rid = c.request(OP["PUT"], p_put(8 << 20, 0, "doc.bin"))
        self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
        for _ in range(32):
            c.send_frame(OP["DATA"], rid, os.urandom(65536))
        c.ping()
        rc = self.fsd.stop()
        self.assertEqual(rc, 0, self.fsd.log_tail())
        self.assertIsNone(self.fsd.sanitizer_report())
        self.kill9(self.fsd)  # already gone: keeps tearDown from stopping it
        frames = []
        try:
            frames = c.read_until_closed(5)
        except (AssertionError, OSError):
            pass
        byes = [f for f in frames if f.op == OP["BYE"]]
        self.assertTrue(byes, "no BYE before the close: %r" % frames[-3:])
        self.assertEqual(struct.unpack(">H", byes[-1].payload[:2])[0],
                         ST["SHUTDOWN"])
        self.assertEqual(self.root_names(), ["doc.bin"])
        with open(os.path.join(self.root, "doc.bin"), "rb") as f:
            self.assertEqual(f.read(), v1)


if __name__ == "__main__":
    main()
