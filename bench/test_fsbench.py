"""Checks that fsbench drives a real fsd through every mode and reports what
it did: the request count asked for, no errors, the bytes a transfer moved,
the uploaded files with the right size, every watcher reached in fan-out. It
times nothing: the numbers it reads are counts.

Usage: test_fsbench.py FSD FSBENCH REDIS_FANOUT MKFILES
redis_fanout is checked too when redis-server is on PATH. mkfiles must make
the tree it is asked for, every file whole, by either way.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

FSD, FSBENCH, REDIS_FANOUT, MKFILES = (
    sys.argv[1:5] if len(sys.argv) >= 5 else ("",) * 4)
TIMEOUT = 120


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(what + " exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(what + " did not start listening")


class FsbenchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fsbench-test-")
        cls.root = os.path.join(cls.tmp, "root")
        os.mkdir(cls.root)
        cls.fsd = subprocess.Popen(
            [FSD, "--root", cls.root, "--listen", "127.0.0.1:0",
             "--max-clients", "4096", "--max-clients-per-ip", "4096", "--log-level", "info"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        cls.log = []
        found = threading.Event()
        cls.port = None

        def reader():
            for raw in cls.fsd.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                cls.log.append(line)
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)$", line)
                if m and cls.port is None:
                    cls.port = int(m.group(1))
                    found.set()
            found.set()

        threading.Thread(target=reader, daemon=True).start()
        if not found.wait(20) or cls.port is None:
            cls.fsd.kill()
            cls.fsd.wait()
            raise RuntimeError("fsd did not start:\n" + "\n".join(cls.log))
        cls.server = "127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.fsd.send_signal(signal.SIGTERM)
        try:
            cls.fsd.wait(20)
        except subprocess.TimeoutExpired:
            cls.fsd.kill()
            cls.fsd.wait()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_bench(self, *args):
        r = subprocess.run([FSBENCH, "-s", self.server, "-q", "--json"]
                           + list(args), capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        self.assertEqual(len(lines), 1, r.stdout)
        return json.loads(lines[0])

    def test_fsbench_size_counts_every_request(self):
        out = self.run_bench("-t", "size", "-c", "4", "-P", "8", "-n", "500",
                             "--name", "size.dat")
        self.assertEqual(out["requests"], 500)
        self.assertEqual(out["errors"], 0)
        # The set-up uploaded the file the requests ask about.
        self.assertEqual(os.path.getsize(os.path.join(self.root, "size.dat")),
                         4096)

    def test_fsbench_fewer_requests_than_slots(self):
        out = self.run_bench("-t", "size", "-c", "5", "-P", "4", "-n", "3")
        self.assertEqual(out["requests"], 3)

    def test_fsbench_get_verifies_every_byte(self):
        size = 300 * 1024 + 7  # not a multiple of any chunk size
        out = self.run_bench("-t", "get", "-c", "3", "-P", "2", "-n", "12",
                             "--file-size", str(size), "--name", "get.dat",
                             "--verify")
        self.assertEqual(out["requests"], 12)
        self.assertEqual(out["errors"], 0)
        self.assertEqual(out["payload_bytes"], 12 * size)

    def test_fsbench_get_empty_file(self):
        out = self.run_bench("-t", "get", "-c", "2", "-n", "4",
                             "--file-size", "0", "--name", "empty.dat")
        self.assertEqual(out["requests"], 4)
        self.assertEqual(out["payload_bytes"], 0)

    def test_fsbench_put_stores_whole_files(self):
        size = (1 << 20) + 1  # one byte past a 1 MiB DATA frame
        out = self.run_bench("-t", "put", "-c", "2", "-P", "2", "-n", "6",
                             "--file-size", str(size))
        self.assertEqual(out["requests"], 6)
        self.assertEqual(out["errors"], 0)
        self.assertEqual(out["payload_bytes"], 6 * size)
        for c in range(2):
            for s in range(2):
                path = os.path.join(self.root, "fsbench-put.%d.%d" % (c, s))
                self.assertEqual(os.path.getsize(path), size)

    def test_fsbench_ls_and_mixed(self):
        out = self.run_bench("-t", "ls", "-c", "2", "-P", "2", "-n", "40")
        self.assertEqual(out["requests"], 40)
        out = self.run_bench("-t", "mixed", "-c", "2", "-P", "3", "-n", "90",
                             "--file-size", "70000", "--name", "mixed.dat")
        self.assertEqual(out["requests"], 90)
        self.assertEqual(out["errors"], 0)

    def test_fsbench_duration_mode_completes_requests(self):
        out = self.run_bench("-t", "size", "-c", "2", "-d", "0.3")
        self.assertGreater(out["requests"], 0)
        self.assertEqual(out["errors"], 0)

    def test_fsbench_fanout_reaches_every_watcher(self):
        out = self.run_bench("-t", "fanout", "-c", "30", "--rounds", "3")
        self.assertEqual(out["watchers"], 30)
        self.assertEqual(out["rounds"], 3)
        self.assertEqual(out["via"], "put")
        self.assertEqual(out["resync"], 0)
        self.assertTrue(os.path.exists(os.path.join(self.root, "fsbench-fan")))
        out = self.run_bench("-t", "fanout", "--notice", "-c", "30",
                             "--rounds", "2")
        self.assertEqual(out["via"], "notice")
        self.assertEqual(out["rounds"], 2)

    def test_fsbench_idle_holds_connections(self):
        for extra in ([], ["--raw"]):
            r = subprocess.run([FSBENCH, "-s", self.server, "-t", "idle",
                                "-c", "64", "-d", "0.2"] + extra,
                               capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), "ready 64")

    def test_fsbench_rejects_bad_usage(self):
        for args in (["-n", "5", "-d", "1"], ["-t", "nope"], ["-c", "0"],
                     ["--name", "../x"], ["--raw"]):
            r = subprocess.run([FSBENCH, "-s", self.server] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn("fsbench", r.stderr)

    def test_fsbench_reports_refused_connection(self):
        r = subprocess.run([FSBENCH, "-s", "127.0.0.1:%d" % free_port(),
                            "-n", "1"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("connect", r.stderr)


@unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
class RedisFanoutTest(unittest.TestCase):
    def test_redis_fanout_reaches_every_subscriber(self):
        tmp = tempfile.mkdtemp(prefix="redis-fanout-test-")
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, redis, "redis-server")
            r = subprocess.run([REDIS_FANOUT, "-s", "127.0.0.1:%d" % port,
                                "-c", "40", "--rounds", "3", "-q", "--json"],
                               capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = json.loads(r.stdout.strip().splitlines()[-1])
            self.assertEqual(out["watchers"], 40)
            self.assertEqual(out["rounds"], 3)
        finally:
            redis.terminate()
            redis.wait(20)
            shutil.rmtree(tmp, ignore_errors=True)


class MkfilesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mkfiles-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make(self, *args):
        return subprocess.run([MKFILES] + list(args), capture_output=True,
                              text=True, timeout=TIMEOUT)

    def test_mkfiles_makes_the_tree_whole_either_way(self):
        for mode in ("tmpfile", "rename"):
            top = os.path.join(self.tmp, mode)
            r = self.make("-t", "3", "-m", mode, top, "50", "4", "1000")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertGreaterEqual(float(r.stdout), 0.0)
            self.assertEqual(sorted(os.listdir(top)),
                             ["d0000", "d0001", "d0002", "d0003"])
            names = {}
            for d in sorted(os.listdir(top)):
                for f in os.listdir(os.path.join(top, d)):
                    names[f] = d
            # Every file once, in the folder bench/tree.sh puts it in, and
            # no temporary name left over.
            self.assertEqual(sorted(names),
                             ["f%06d.bin" % i for i in range(50)], mode)
            for i in range(50):
                path = os.path.join(top, names["f%06d.bin" % i],
                                    "f%06d.bin" % i)
                self.assertEqual(names["f%06d.bin" % i], "d%04d" % (i % 4))
                self.assertEqual(os.path.getsize(path), 1000, path)

    def test_mkfiles_refuses_an_existing_folder_and_bad_usage(self):
        r = self.make(self.tmp, "1", "1", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("mkfiles", r.stderr)
        for args in (["-m", "copy", "x", "1", "1", "1"],
                     [os.path.join(self.tmp, "a"), "1", "0", "1"],
                     [os.path.join(self.tmp, "b"), "-1", "1", "1"],
                     [os.path.join(self.tmp, "c"), "1", "1"]):
            r = self.make(*args)
            self.assertNotEqual(r.returncode, 0, args)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
