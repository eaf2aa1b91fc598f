#!/usr/bin/env python3
"""Path safety: no name reaches outside the root, and a symlink planted in the
root is neither listed nor followed. After every attack the files outside the
root (a sibling folder, the root's parent, /etc/passwd) must be unchanged in
content and modification time."""

import os
import socket
import time

from fsptest import (OP, ST, FsdCase, FspError, frame, main, p_put, p_range,
                     slow_factor, snapshot, xxh3)

BAD_NAMES = [
    b"../x", b"..", b".", b"a/b", b"/etc/passwd", b"../outside/secret.txt",
    b"a\x00b", b"\x00", b"secret.txt\x00.jpg", b"x" * 256, b"\xe2\x82" * 86,
    b"\xff", b"\xc0\xaf", b"\xc0\xae\xc0\xae", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"abc\x80", b"", b".hidden", b"a\nb", b"tab\t",
    b"del\x7f", b"..\\x", b"/",
]


class PathCase(FsdCase):
    start_fsd = False

    def setUp(self):
        super().setUp()
        # Things a broken server could reach: a sibling folder, a file in the
        # root's parent (what "../x" names) and /etc/passwd.
        with open(os.path.join(self.outside, "secret.txt"), "wb") as f:
            f.write(b"outside the root\n")
        with open(os.path.join(self.tmp, "x"), "wb") as f:
            f.write(b"the root's parent\n")
        os.utime(os.path.join(self.outside, "secret.txt"), ns=(10**18,) * 2)
        os.utime(os.path.join(self.tmp, "x"), ns=(10**18,) * 2)
        with open(os.path.join(self.root, "inside.txt"), "wb") as f:
            f.write(b"inside\n")
        # Planted links, before the server starts (the start-up scan must skip
        # them) ...
        os.symlink(os.path.join(self.outside, "secret.txt"),
                   os.path.join(self.root, "abs-link"))
        os.symlink("../outside/secret.txt", os.path.join(self.root, "rel-link"))
        os.symlink("../outside/new.txt", os.path.join(self.root, "dangling"))
        os.symlink("../outside", os.path.join(self.root, "dir-link"))
        os.symlink("/etc/passwd", os.path.join(self.root, "passwd"))
        os.mkdir(os.path.join(self.root, "subdir"))
        self.fsd = self.spawn()
        self.watch = [self.outside, os.path.join(self.tmp, "x"),
                      "/etc/passwd", os.path.join(self.root, "subdir")]
        self.before = snapshot(self.watch)

    def assert_outside_unchanged(self):
        self.assertEqual(snapshot(self.watch), self.before)
        self.assertFalse(os.path.exists(os.path.join(self.outside, "new.txt")))

    def test_paths_bad_names_refused(self):
        c = self.fsd.connect()
        for name in BAD_NAMES:
            for op, payload in ((OP["STAT"], name), (OP["DELETE"], name),
                                (OP["GET"], p_range(0, 2**64 - 1, name)),
                                (OP["HASH"], p_range(0, 2**64 - 1, name)),
                                (OP["PUT"], p_put(4, 0, name)),
                                (OP["PUT"], p_put(4, 1, name))):
                rid = c.new_id()
                c.send(frame(op, rid, payload))
                f = c.recv_frame()
                self.assertEqual((f.op, f.id), (OP["ERROR"], rid),
                                 "%r for %#x %r" % (f, op, name))
                self.assert_error([f], "BAD_NAME")
            self.assert_outside_unchanged()
        self.assertEqual(sorted(c.list()), [b"inside.txt"])
        self.assertEqual(sorted(os.listdir(self.root)),
                         ["abs-link", "dangling", "dir-link", "inside.txt",
                          "passwd", "rel-link", "subdir"])

    def test_paths_longest_name_works(self):
        # The limit is 255 bytes: show the refusal above is about the length.
        c = self.fsd.connect()
        for name in ("n" * 255, "\u00e9" * 127 + "n"):
            data = name.encode()[:100]
            c.put(name, data)
            self.assertEqual(c.stat(name)[0], len(data))
            self.assertEqual(c.get(name)[1], data)
            self.assertIn(name.encode(), c.list())
            c.delete(name)
        self.assert_outside_unchanged()

    def links(self):
        return ["abs-link", "rel-link", "dangling", "dir-link", "passwd",
                "subdir"]

    def check_links(self, c, names):
        listed = c.list()
        for n in names:
            self.assertNotIn(n.encode(), listed)
            for fn in (c.stat, c.get, c.hash):
                with self.assertRaises(FspError, msg="%s %s" %
                                       (fn.__name__, n)) as cm:
                    fn(n)
                self.assertIn(cm.exception.status,
                              (ST["NOT_FOUND"], ST["IO"]), cm.exception)
            self.assert_outside_unchanged()
            with self.assertRaises(FspError, msg="DELETE %s" % n):
                c.delete(n)
            self.assert_outside_unchanged()
            # A no-clobber PUT must not go through the link either.
            try:
                c.put(n, b"written through a link?\n", mode=1)
            except FspError:
                pass
            self.assert_outside_unchanged()
        self.assertTrue(os.path.isdir(os.path.join(self.root, "subdir")))

    def test_paths_planted_symlinks_before_start(self):
        c = self.fsd.connect()
        self.check_links(c, self.links())

    def test_paths_planted_symlinks_while_running(self):
        for n in ("late-abs", "late-rel"):
            os.symlink(os.path.join(self.outside, "secret.txt") if n ==
                       "late-abs" else "../outside/secret.txt",
                       os.path.join(self.root, n))
        # Give the folder watcher time to see (and skip) them.
        c = self.fsd.connect()
        for _ in range(20):
            c.ping()
        time.sleep(0.5)
        self.check_links(c, ["late-abs", "late-rel"])

    def test_paths_put_replaces_link_not_target(self):
        # A replacing PUT over a link name may refuse or may replace the link
        # itself with a regular file; either way the target is untouched.
        c = self.fsd.connect()
        for n in ("abs-link", "rel-link", "dangling", "passwd", "dir-link"):
            data = ("new contents for %s\n" % n).encode()
            try:
                c.put(n, data)
                replaced = True
            except FspError:
                replaced = False
            self.assert_outside_unchanged()
            p = os.path.join(self.root, n)
            if replaced:
                self.assertFalse(os.path.islink(p), n)
                with open(p, "rb") as f:
                    self.assertEqual(f.read(), data)
                self.assertEqual(c.get(n)[1], data)
            else:
                self.assertTrue(os.path.islink(p), n)
        # A real directory in the root is not a file to replace.
        with self.assertRaises(FspError):
            c.put("subdir", b"x")
        self.assert_outside_unchanged()
        self.assertTrue(os.path.isdir(os.path.join(self.root, "subdir")))

    def test_paths_replace_file_by_link_during_get(self):
        # A file listed in the register that is swapped for a link behind the
        # server's back must not be served through the link.
        c = self.fsd.connect()
        c.put("swap.txt", b"original\n")
        p = os.path.join(self.root, "swap.txt")
        os.unlink(p)
        os.symlink(os.path.join(self.outside, "secret.txt"), p)
        try:
            self.assertNotEqual(c.get("swap.txt")[1], b"outside the root\n")
        except FspError:
            pass
        try:
            # A hash of the outside file would leak its contents too.
            self.assertNotEqual(c.hash("swap.txt")[2],
                                xxh3(b"outside the root\n"))
        except FspError:
            pass
        try:
            c.delete("swap.txt")
        except FspError:
            pass
        self.assert_outside_unchanged()
        self.assertTrue(os.path.isfile(os.path.join(self.outside,
                                                    "secret.txt")))

    def test_paths_hardlink_written_by_replace_only(self):
        # A hard link is a regular file, so the server lists and serves it.
        # But an upload must replace the name (temp file + rename), never
        # write into the existing inode, which would change the outside file.
        os.link(os.path.join(self.outside, "secret.txt"),
                os.path.join(self.root, "hard.txt"))
        c = self.fsd.connect()
        # The folder watcher normally sees it at once; fsd's periodic rescan
        # (every 10 s) is the backstop.
        deadline = time.monotonic() + 15 * slow_factor()
        while b"hard.txt" not in c.list():
            self.assertLess(time.monotonic(), deadline,
                            "a file added to the folder never appeared")
            time.sleep(0.1)
        self.before = snapshot(self.watch)
        c.put("hard.txt", b"replaced, not overwritten\n")
        self.assert_outside_unchanged()
        self.assertEqual(c.get("hard.txt")[1], b"replaced, not overwritten\n")
        c.delete("hard.txt")
        self.assert_outside_unchanged()

    def test_paths_server_survives(self):
        c = self.fsd.connect()
        for name in BAD_NAMES:
            c.send(frame(OP["STAT"], 7, name))
            c.recv_frame()
        c.sock.shutdown(socket.SHUT_WR)
        c.read_until_closed(5)
        self.assert_serving()


if __name__ == "__main__":
    main()
