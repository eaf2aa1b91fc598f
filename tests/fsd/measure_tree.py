"""Measures fsd on a tree: FILES small files spread over DIRS folders,
made in a temporary root before fsd starts; then the time from start to
the "listening" line (the first scan of the tree, one watch per folder),
the resident memory (VmRSS) once it listens, and the time a version 3
LIST RECURSIVE of the root takes (this client's parsing included).

Usage: measure_tree.py --fsd PATH [--files N] [--dirs N]

Not a test (it times things); the figures go into notes.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fsdrun  # noqa: E402
import test_tree as tt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsd", required=True)
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--dirs", type=int, default=1000)
    a = ap.parse_args()
    fsdrun.FSD = os.path.abspath(a.fsd)
    tmp = tempfile.mkdtemp(prefix="fsd-tree-")
    root = os.path.join(tmp, "root")
    try:
        for i in range(a.files):
            d = os.path.join(root, "d%04d" % (i % a.dirs))
            if i < a.dirs:
                os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%06d.bin" % i), "wb") as f:
                f.write(b"x" * 16)
        os.sync()  # the scan should not compete with the writeback
        t0 = time.time()
        srv = fsdrun.Fsd(root=root).start(timeout=300)
        t1 = time.time()
        rss = srv.rss_kib()
        c = tt.Tree(srv.port, timeout=300)
        t2 = time.time()
        n = len(c.ls("", tt.LIST_RECURSIVE))
        t3 = time.time()
        c.close()
        srv.stop()
        srv.cleanup()
        print("%d files in %d folders: listening after %.2f s, RSS %d KiB, "
              "LIST RECURSIVE of %d entries in %.3f s" %
              (a.files, a.dirs, t1 - t0, rss, n, t3 - t2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
