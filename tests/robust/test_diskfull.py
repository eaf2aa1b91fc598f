#!/usr/bin/env python3
"""Disk full and write errors. Two honest ways to make writes fail:
 - as root, the server's folder is a 2 MiB tmpfs (ENOSPC);
 - for anyone, fsd runs with RLIMIT_FSIZE of 1 MiB and SIGXFSZ ignored
   (EFBIG on the write that crosses the limit).
A PUT that cannot be written fails with a clear error (NO_SPACE or IO),
leaves nothing behind, the old version of the file stays whole, and the
server goes on serving."""

import os
import resource
import shutil
import signal
import subprocess

from fsptest import FsdCase, FspError, ST, main

TMPFS_SIZE = 2 << 20
FSIZE_LIMIT = 1 << 20


def can_mount():
    return os.geteuid() == 0


class DiskFullBase:
    """The checks, shared by both ways of making writes fail."""

    big = 4 << 20  # never fits

    def check_write_failure(self):
        c = self.fsd.connect()
        small = os.urandom(100000)
        c.put("small.bin", small)
        names = self.root_names()

        # A new file that does not fit.
        with self.assertRaises(FspError) as cm:
            c.put("huge.bin", os.urandom(self.big))
        self.assertIn(cm.exception.status, (ST["NO_SPACE"], ST["IO"]),
                      cm.exception)
        self.assertTrue(cm.exception.message, "the error says nothing")
        self.wait_for(lambda: self.root_names() == names, 5,
                      "the partial upload to be removed (folder %r)" %
                      self.root_names())
        self.assertNotIn(b"huge.bin", c.list())

        # Replacing an existing file: the old version stays whole.
        with self.assertRaises(FspError) as cm:
            c.put("small.bin", os.urandom(self.big))
        self.assertIn(cm.exception.status, (ST["NO_SPACE"], ST["IO"]))
        self.wait_for(lambda: self.root_names() == names, 5,
                      "the partial upload to be removed")
        self.assertEqual(c.get("small.bin")[1], small)

        # The same connection and new ones go on working, and space freed by
        # the failed uploads is usable again.
        for i in range(3):
            data = os.urandom(500000)
            c.put("after%d.bin" % i, data)
            self.assertEqual(c.get("after%d.bin" % i)[1], data)
            c.delete("after%d.bin" % i)
        self.assert_serving()
        k = self.fsd.connect()
        self.assertEqual(sorted(k.list()), [b"small.bin"])


class TmpfsCase(DiskFullBase, FsdCase):
    start_fsd = False

    def setUp(self):
        if not can_mount():
            self.skipTest("not root: cannot mount a tmpfs")
        super().setUp()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%d" % TMPFS_SIZE, "fsd-robust", self.root],
                           capture_output=True)
        if r.returncode != 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.skipTest("mount failed: %s" % r.stderr.decode().strip())
        self.mounted = True
        # The default --min-free (256 MiB) is more than this disk holds.
        self.fsd = self.spawn(args=["--min-free", "0"])

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if getattr(self, "mounted", False):
                subprocess.run(["umount", "-l", self.root])
                # The first clean-up could not remove the mount point.
                shutil.rmtree(self.tmp, ignore_errors=True)

    def test_diskfull_tmpfs(self):
        self.check_write_failure()
        # Space is really back: tmpfs holds nothing but the small file.
        st = os.statvfs(self.root)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        self.assertLess(used, 200000, "space of failed uploads not freed")

    def test_diskfull_tmpfs_exact_fill(self):
        # Fill the disk with files until PUT fails, then delete and retry.
        c = self.fsd.connect()
        stored = []
        for i in range(40):
            try:
                c.put("fill%d" % i, os.urandom(200000))
                stored.append("fill%d" % i)
            except FspError as e:
                self.assertIn(e.status, (ST["NO_SPACE"], ST["IO"]), e)
                break
        else:
            self.fail("a 2 MiB disk took 8 MB")
        self.assertEqual(sorted(c.list()), sorted(n.encode() for n in stored))
        self.wait_for(lambda: self.root_names() == sorted(stored), 5,
                      "the partial upload to be removed")
        c.delete(stored[0])
        c.put("again", os.urandom(150000))
        self.assert_serving()


def limit_fsize():
    # An ignored SIGXFSZ stays ignored across exec, so the write fails with
    # EFBIG instead of killing fsd.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


class FsizeCase(DiskFullBase, FsdCase):
    start_fsd = False

    def setUp(self):
        super().setUp()
        self.fsd = self.spawn(preexec_fn=limit_fsize)

    def test_diskfull_fsize_limit(self):
        self.big = 3 << 20
        self.check_write_failure()


if __name__ == "__main__":
    main()
