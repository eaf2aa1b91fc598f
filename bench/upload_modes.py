#!/usr/bin/env python3
"""One large upload, fsd with and without --no-fsync: wall time and the CPU
time fsd spent, per upload, with the two servers taking turns in ABBA order
(so that neither always runs right after the other's disk writes). Each
upload starts after a `sync` that is not timed and replaces the file the
last one stored, as bench/compare's upload case does.

Usage: bench/upload_modes.py --fsd build/server/fsd --fsc build/client/fsc
                             [--size BYTES] [--rounds 6] [--dir DIR]

Prints each upload (GB/s, seconds, fsd's CPU seconds, and the seconds fsd
spent in the kernel), then the median and min-max per mode."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fsd"))

import fsdrun  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """(user, system) CPU seconds of process pid, all threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def upload(fsc, srv, src):
    subprocess.run(["sync"], check=True)
    u0, s0 = cpu_of(srv.proc.pid)
    t0 = time.perf_counter()
    subprocess.run([fsc, "-s", "127.0.0.1:%d" % srv.port, "-q", "put", src,
                    "--as", "up.bin"], check=True, stdout=subprocess.DEVNULL)
    t = time.perf_counter() - t0
    u1, s1 = cpu_of(srv.proc.pid)
    return t, (u1 - u0) + (s1 - s0), s1 - s0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fsd", required=True)
    ap.add_argument("--fsc", required=True)
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="upload-modes-", dir=a.dir)
    servers = {}
    try:
        src = os.path.join(tmp, "big.bin")
        with open(src, "wb") as f:
            left = a.size
            while left > 0:
                n = min(left, 1 << 24)
                f.write(os.urandom(n))
                left -= n
        for label, extra in (("fsd", []), ("fsd --no-fsync", ["--no-fsync"])):
            servers[label] = fsdrun.Fsd(
                *extra, "--log-level", "error",
                root=os.path.join(tmp, "root-%d" % len(servers)),
                fsd=a.fsd).start()
        labels = list(servers)
        res = {label: [] for label in labels}
        for rnd in range(a.rounds):
            order = labels if rnd % 4 in (0, 3) else labels[::-1]
            for label in order:
                t, cpu, sys_ = upload(a.fsc, servers[label], src)
                res[label].append((t, cpu, sys_))
                print("round %d  %-15s %5.2f GB/s  %6.2f s  fsd CPU %5.2f s"
                      " (kernel %5.2f s)" % (rnd + 1, label, a.size / t / 1e9,
                                             t, cpu, sys_), flush=True)
        print("\n%d bytes, %d rounds (ABBA); median (min-max)" %
              (a.size, a.rounds))
        for label in labels:
            gbs = [a.size / r[0] / 1e9 for r in res[label]]
            cpu = [r[1] for r in res[label]]
            print("%-15s %5.2f GB/s (%.2f-%.2f)  fsd CPU %5.2f s (%.2f-%.2f)"
                  % (label, statistics.median(gbs), min(gbs), max(gbs),
                     statistics.median(cpu), min(cpu), max(cpu)))
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
