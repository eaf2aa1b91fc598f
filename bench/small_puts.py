#!/usr/bin/env python3
"""Many small uploads on one connection: the time to PUT COUNT new files of
SIZE bytes, pipelined (up to WINDOW requests in flight), from the first PUT
sent to the last INFO received. Each file is confirmed only once durable
(unless --no-fsync), so this measures how well commits share their flushes.

Usage: bench/small_puts.py --fsd build/server/fsd [--base-fsd OTHER_FSD]
                           [--count 2000] [--size 4096] [--window 62]
                           [--rounds 5] [--fsc FSC] [--rsync] [--dir DIR]

Setups, run alternately in each round: fsd, fsd --no-fsync, and with
--base-fsd the same two for another build (e.g. main's); with --fsc, the
same uploads made by one `fsc put FILE...` (as many in flight as fsc
keeps); with --rsync, the
same files pushed with `rsync -a --fsync` (and plain `rsync -a`) to an
`rsync --daemon` on loopback. Each round uploads new names into an empty
root on the file system of --dir (default: the system's temp folder),
after a `sync` that is not timed. Prints each run, then the median,
minimum and maximum per setup, in seconds and files per second, and for
fsd the median CPU time the server spent (less sensitive than the wall
time to other work on the machine)."""

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fsd"))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402


TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """User plus system CPU seconds of process pid, all threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def put_many(port, files, window):
    """Uploads files ({name: bytes}) pipelined on one connection; returns
    the seconds from the first PUT to the last INFO."""
    c = fc.Client("127.0.0.1", port, timeout=120)
    names = list(files)
    body_of = {}
    sent, done = 0, 0
    t0 = time.perf_counter()
    while done < len(names):
        while sent < len(names) and sent - done < window:
            name = names[sent]
            rid = c.request(fc.PUT, fc.put_payload(len(files[name]), 0, name))
            body_of[rid] = files[name]
            sent += 1
        op, rid, p = c.read_frame()
        if op == fc.READY:
            body = body_of[rid]
            c.send_raw(fc.frame(fc.DATA, rid, body) +
                       fc.frame(fc.END, rid, struct.pack(
                           ">QQ", len(body), fc.xxh3_64(body))))
        elif op == fc.INFO:
            del body_of[rid]
            done += 1
        elif op in fc.EVENT_OPS:
            continue
        else:
            fc.Client.check(op, rid, p)
            raise RuntimeError("unexpected %s" % fc.OP_NAMES.get(op, op))
    t = time.perf_counter() - t0
    c.close()
    return t


def fsc_put(fsc, port, src, names):
    """Uploads the files names of folder src with one `fsc put`; returns
    the seconds it took."""
    t0 = time.perf_counter()
    subprocess.run([fsc, "-s", "127.0.0.1:%d" % port, "-q", "put"] + names,
                   cwd=src, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rsyncd:
    """An rsync daemon on loopback serving one writable module."""

    def __init__(self, tmp):
        self.root = os.path.join(tmp, "rsync-root")
        os.makedirs(self.root)
        self.port = free_port()
        conf = os.path.join(tmp, "rsyncd.conf")
        with open(conf, "w") as f:
            f.write("use chroot = no\npid file = %s\n[m]\npath = %s\n"
                    "read only = no\n" % (os.path.join(tmp, "rsyncd.pid"),
                                          self.root))
            if os.getuid() == 0:
                f.write("uid = root\ngid = root\n")
        self.proc = subprocess.Popen(
            ["rsync", "--daemon", "--no-detach", "--config", conf,
             "--address", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        fsdrun.wait_until(self.listening, timeout=10)

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def push(self, src, dest, fsync):
        args = ["rsync", "-a"] + (["--fsync"] if fsync else []) + [
            src + "/", "rsync://127.0.0.1:%d/m/%s/" % (self.port, dest)]
        t0 = time.perf_counter()
        subprocess.run(args, check=True)
        return time.perf_counter() - t0

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fsd", required=True)
    ap.add_argument("--base-fsd", help="another fsd build to compare with")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--window", type=int, default=62,
                    help="requests in flight (fsd allows 64)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fsc", type=os.path.abspath, help="also upload the files with this fsc's "
                    "`fsc put FILE...` (its own number in flight)")
    ap.add_argument("--rsync", action="store_true",
                    help="also push the files with rsync to rsync --daemon")
    ap.add_argument("--dir", default=None,
                    help="where the roots go (its file system is measured)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="small-puts-", dir=a.dir)
    servers, rsyncd = {}, None
    try:
        setups = [("fsd", a.fsd, []), ("fsd --no-fsync", a.fsd, ["--no-fsync"])]
        if a.base_fsd:
            setups += [("base fsd", a.base_fsd, []),
                       ("base fsd --no-fsync", a.base_fsd, ["--no-fsync"])]
        for label, exe, extra in setups:
            root = os.path.join(tmp, "root-%d" % len(servers))
            servers[label] = fsdrun.Fsd(*extra, "--log-level", "error",
                                        "--max-clients-per-ip", "1024",
                                        root=root, fsd=exe).start()
        # label -> (how, fsd server or None)
        runs = {label: ("pipe", servers[label]) for label, _, _ in setups}
        if a.fsc:
            runs.update({label + " (fsc put)": ("fsc", servers[label])
                         for label, _, _ in setups})
        src = os.path.join(tmp, "src")
        if a.rsync:
            if shutil.which("rsync") is None:
                sys.exit("small_puts: rsync is not installed")
            rsyncd = Rsyncd(tmp)
            runs["rsync -a --fsync"] = ("rsync", None)
            runs["rsync -a"] = ("rsync", None)
        labels = list(runs)
        times = {label: [] for label in labels}
        cpus = {label: [] for label in labels if runs[label][1] is not None}
        for rnd in range(a.rounds):
            for label in labels:
                how, srv = runs[label]
                files = {"r%d-%05d" % (rnd, i): os.urandom(a.size)
                         for i in range(a.count)}
                if how != "pipe":
                    shutil.rmtree(src, ignore_errors=True)
                    os.makedirs(src)
                    for name, body in files.items():
                        with open(os.path.join(src, name), "wb") as f:
                            f.write(body)
                subprocess.run(["sync"], check=True)
                c0 = cpu_of(srv.proc.pid) if srv is not None else 0
                if how == "rsync":
                    t = rsyncd.push(src, "%s-%d" % (label[-5:], rnd),
                                    "--fsync" in label)
                elif how == "fsc":
                    t = fsc_put(a.fsc, srv.port, src, list(files))
                else:
                    t = put_many(srv.port, files, a.window)
                if srv is not None:
                    cpus[label].append(cpu_of(srv.proc.pid) - c0)
                times[label].append(t)
                print("round %d  %-30s %7.3f s  %7.0f files/s%s" %
                      (rnd + 1, label, t, a.count / t,
                       "  fsd CPU %.2f s" % cpus[label][-1]
                       if label in cpus else ""), flush=True)
        print("\n%d files of %d bytes, window %d, %d rounds; median (min-max)"
              % (a.count, a.size, a.window, a.rounds))
        for label in labels:
            v = times[label]
            med = statistics.median(v)
            cpu = ("  fsd CPU %.2f s" % statistics.median(cpus[label])
                   if label in cpus else "")
            print("%-30s %7.3f s (%.3f-%.3f)  %7.0f files/s%s" %
                  (label, med, min(v), max(v), a.count / med, cpu))
    finally:
        for s in servers.values():
            s.stop()
        if rsyncd is not None:
            rsyncd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
