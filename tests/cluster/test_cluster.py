"""Cluster tests: a real nats-server with JetStream on a loopback port (its
store in a temporary folder) and three real fsd serving one shared folder
through it. Usage:
  test_cluster.py --fsd PATH [--fsc PATH] [--built yes|no] [unittest args]
Exits 77 (skipped) when fsd was built without libnats or nats-server is
missing."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fsd"))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402
import test_tree as tt  # noqa: E402

FSC = None
SKIP = 77
WAIT = 20.0  # seconds any one thing may take before the test fails


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nats:
    """nats-server -js on 127.0.0.1, started and stopped by the test."""

    def __init__(self, store, args=()):
        self.store = store
        self.port = free_port()
        self.args = list(args)
        self.proc = None
        self.url = "nats://127.0.0.1:%d" % self.port

    def start(self):
        self.log = open(os.path.join(self.store, "nats.log"), "ab")
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-sd", self.store, "-a", "127.0.0.1",
             "-p", str(self.port)] + self.args, stdout=self.log,
            stderr=self.log)
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(WAIT)
            self.proc = None
            self.log.close()


class ClusterTest(unittest.TestCase):
    """A fresh NATS and three fsd (a, b, c) on one root for each test."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fsd-cluster-")
        self.root = os.path.join(self.tmp, "root")
        os.mkdir(self.root)
        store = os.path.join(self.tmp, "nats")
        os.mkdir(store)
        self.nats = Nats(store).start()
        self.addCleanup(self.nats.stop)
        self.nodes = {}
        for name in "abc":
            self.start_node(name)

    def tearDown(self):
        for name, srv in list(self.nodes.items()):
            if srv.proc is not None:
                rc = srv.stop()
                if rc != 0 or srv.sanitizer_report():
                    self.fail("fsd %s exited with %r:\n%s" %
                              (name, rc, "\n".join(srv.log)))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_node(self, name, *args):
        srv = fsdrun.Fsd("--cluster", self.nats.url, "--node", name, *args,
                         root=self.root)
        srv.start(timeout=WAIT)
        self.nodes[name] = srv
        return srv

    def client(self, name, **kw):
        c = fc.Client("127.0.0.1", self.nodes[name].port, timeout=WAIT, **kw)
        self.addCleanup(c.close)
        return c

    def watch(self, name, since=0, epoch=0):
        c = self.client(name)
        return c, c.subscribe(epoch=epoch, since=since)

    @staticmethod
    def events(c, n):
        """The next n EVENTs of c as (seq, kind, name, size)."""
        out = []
        while len(out) < n:
            e = c.next_event()
            if e.type == "EVENT":
                out.append((e.seq, e.kind, e.name, e.size))
        return out

    def test_cluster_watchers_see_one_order(self):
        watchers = {n: self.watch(n) for n in "abc"}
        epochs = {w[1][0] for w in watchers.values()}
        self.assertEqual(len(epochs), 1, "one epoch on every node")
        self.client("a").put("one", b"1" * 10)
        self.client("b").put("two", b"2" * 20)
        self.client("c").delete("one")
        self.client("b").put("two", b"2" * 21)
        seen = {n: self.events(w[0], 4) for n, w in watchers.items()}
        self.assertEqual(seen["a"], seen["b"])
        self.assertEqual(seen["a"], seen["c"])
        start = seen["a"][0][0]
        self.assertEqual([e[0] for e in seen["a"]],
                         list(range(start, start + 4)))
        self.assertEqual([e[1:] for e in seen["a"]],
                         [(fc.EV_ADDED, "one", 10), (fc.EV_ADDED, "two", 20),
                          (fc.EV_REMOVED, "one", 0),
                          (fc.EV_REPLACED, "two", 21)])
        # Notices reach every node's watchers too, without a seq.
        self.client("c").notice("hello")
        for w in watchers.values():
            e = w[0].next_event()
            self.assertEqual((e.type, e.text), ("NOTIFY", "hello"))

    def test_cluster_concurrent_replaces_leave_one_version(self):
        versions = {bytes([65 + i]) * (1000 + 137 * i) for i in range(8)}
        versions = sorted(versions, key=len)
        watchers = {n: self.watch(n)[0] for n in "abc"}
        errors = []

        def put(i, data):
            try:
                with fc.Client("127.0.0.1", self.nodes["abc"[i % 3]].port,
                               timeout=60) as c:
                    c.put("same", data)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=put, args=(i, v))
                   for i, v in enumerate(versions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        with open(os.path.join(self.root, "same"), "rb") as f:
            disk = f.read()
        self.assertIn(disk, versions, "one whole version on disk")
        for name, w in watchers.items():
            evs = self.events(w, 8)
            self.assertEqual(evs[-1][2:], ("same", len(disk)),
                             "the last event on %s names the file" % name)
            got = self.client(name).get("same")
            self.assertEqual(fc.xxh3_64(got), fc.xxh3_64(disk))

    def test_cluster_since_catches_up_across_restart(self):
        w, (epoch, seq0) = self.watch("c")
        self.client("a").put("x", b"x")
        self.assertEqual(self.events(w, 1)[0][0], seq0 + 1)
        w.close()
        for i in range(3):
            self.client("a").put("f%d" % i, b"y" * i)
        w2, (epoch2, _) = self.watch("c", since=seq0 + 1, epoch=epoch)
        self.assertEqual(epoch2, epoch)
        self.assertEqual([e[:3] for e in self.events(w2, 3)],
                         [(seq0 + 2, fc.EV_ADDED, "f0"),
                          (seq0 + 3, fc.EV_ADDED, "f1"),
                          (seq0 + 4, fc.EV_ADDED, "f2")])
        # A node restarted rejoins with the same epoch and the whole history.
        self.assertEqual(self.nodes["c"].stop(), 0)
        self.client("b").put("while-away", b"z")
        self.start_node("c")
        w3, (epoch3, seq3) = self.watch("c", since=seq0 + 1, epoch=epoch)
        self.assertEqual(epoch3, epoch)
        self.assertEqual(seq3, seq0 + 5)
        self.assertEqual([e[:3] for e in self.events(w3, 4)],
                         [(seq0 + 2, fc.EV_ADDED, "f0"),
                          (seq0 + 3, fc.EV_ADDED, "f1"),
                          (seq0 + 4, fc.EV_ADDED, "f2"),
                          (seq0 + 5, fc.EV_ADDED, "while-away")])
        self.assertEqual(self.client("c").stat("while-away")[0], 1)

    def test_cluster_resync_past_retention(self):
        # A stream of its own, whose events last one second.
        args = ("--cluster-stream", "SHORT", "--cluster-retention", "1")
        for name in "ab":
            self.assertEqual(self.nodes.pop(name).stop(), 0)
            self.start_node(name, *args)
        a = self.client("a")
        epoch, seq0 = a.subscribe()
        a.put("old1", b"1")
        a.put("old2", b"2")

        def resync_after_restart():
            self.assertEqual(self.nodes.pop("b").stop(), 0)
            self.start_node("b", *args)
            c = self.client("b")
            c.subscribe(epoch=epoch, since=seq0 + 1)
            e = c.next_event()
            c.close()
            return e if e.type == "RESYNC" else None

        e = fsdrun.wait_until(resync_after_restart, timeout=WAIT, step=0.2)
        self.assertIsNotNone(e, "RESYNC once the events are past retention")
        self.assertEqual(e.epoch, epoch)

    def test_cluster_restart_replays_only_what_since_may_ask(self):
        # More events than a server keeps for "since" (4096): a server
        # that starts replays only those, and answers RESYNC before them.
        n = 4096 + 12
        errors = []

        def put(t):  # four uploaders, on names of their own
            try:
                with fc.Client("127.0.0.1", self.nodes["a"].port,
                               timeout=WAIT) as c:
                    for i in range(t, n, 4):
                        c.put("f%d" % (i % 48), b"%d" % i)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=put, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        self.assertEqual(errors, [])
        self.assertEqual(self.nodes["c"].stop(), 0)
        self.start_node("c")
        epoch, seq = self.watch("c")[1]
        self.assertGreaterEqual(seq, n)
        w, _ = self.watch("c", since=seq - 4095, epoch=epoch)
        self.assertEqual(len(self.events(w, 4095)), 4095)
        old = self.client("c")
        old.subscribe(epoch=epoch, since=seq - 4097)
        self.assertEqual(old.next_event().type, "RESYNC")
        # The files are as the last events left them, on every server.
        last = max(i for i in range(n) if i % 48 == 47)
        for name in "abc":
            self.assertEqual(self.client(name).get("f47"), b"%d" % last)
            self.assertEqual(self.client(name).stat("f47")[0],
                             len(b"%d" % last))

    def test_cluster_kill9_of_a_node(self):
        w, (epoch, seq0) = self.watch("c")
        self.client("b").put("before", b"1")
        self.nodes["b"].proc.send_signal(signal.SIGKILL)
        self.assertEqual(self.nodes["b"].stop(), -signal.SIGKILL)
        self.client("a").put("after", b"22")
        self.assertEqual(self.client("c").get("after"), b"22")
        self.assertEqual([e[:3] for e in self.events(w, 2)],
                         [(seq0 + 1, fc.EV_ADDED, "before"),
                          (seq0 + 2, fc.EV_ADDED, "after")])

    def addr(self, name):
        return "127.0.0.1:%d" % self.nodes[name].port

    def test_cluster_fsc_tries_servers_and_watch_moves_on(self):
        if FSC is None:
            self.skipTest("no --fsc")
        # A watch on b moves to c when b dies, and misses nothing: every
        # change made meanwhile appears once, with no resync.
        out = open(os.path.join(self.tmp, "watch.out"), "w+b")
        err = open(os.path.join(self.tmp, "watch.err"), "w+b")
        self.addCleanup(out.close)
        self.addCleanup(err.close)
        watch = subprocess.Popen(
            [FSC, "-s", self.addr("b") + "," + self.addr("c"), "watch"],
            stdout=out, stderr=err)
        self.addCleanup(watch.wait, WAIT)
        self.addCleanup(watch.terminate)

        def printed(text, f=out):
            with open(f.name, "rb") as f:
                return text in f.read()

        # "watching" comes once subscribed and listed.
        self.assertTrue(fsdrun.wait_until(lambda: printed(b"watching", err),
                                          WAIT))
        # The first server of the list is down: fsc uses the next.
        dead = "127.0.0.1:%d" % free_port()
        src = os.path.join(self.tmp, "src")
        with open(src, "wb") as f:
            f.write(b"s" * 9)
        r = subprocess.run([FSC, "-q", "-s", dead + "," + self.addr("a"),
                            "put", src, "--as", "first"],
                           capture_output=True, timeout=WAIT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"trying the next", r.stderr)
        self.client("a").put("one", b"1")
        self.assertTrue(fsdrun.wait_until(lambda: printed(b"added one"),
                                          WAIT))
        self.nodes["b"].proc.send_signal(signal.SIGKILL)
        self.assertEqual(self.nodes["b"].stop(), -signal.SIGKILL)
        self.client("a").put("two", b"22")
        self.client("a").put("three", b"333")
        self.assertTrue(fsdrun.wait_until(lambda: printed(b"added three"),
                                          WAIT))
        with open(out.name, "rb") as f:
            lines = f.read().decode().splitlines()
        changes = [l for l in lines if l.startswith("added")]
        self.assertEqual([l.split()[1] for l in changes],
                         ["first", "one", "two", "three"], lines)
        with open(err.name, "rb") as f:
            log = f.read().decode()
        self.assertIn("reconnected to " + self.addr("c"), log)
        self.assertNotIn("resync", log + "\n".join(lines))

    def test_cluster_change_beside_fsd_is_published_once(self):
        w, (epoch, seq0) = self.watch("b")
        tmp = os.path.join(self.root, ".beside")
        with open(tmp, "wb") as f:
            f.write(b"b" * 7)
        os.rename(tmp, os.path.join(self.root, "beside"))
        self.assertEqual(self.events(w, 1)[0],
                         (seq0 + 1, fc.EV_ADDED, "beside", 7))
        # A later change through fsd is the very next seq: no duplicate of
        # the first came in between.
        self.client("a").put("next", b"n")
        self.assertEqual(self.events(w, 1)[0][:3],
                         (seq0 + 2, fc.EV_ADDED, "next"))

    def test_cluster_folders_and_renames_reach_every_node(self):
        # Version 3 events (paths, types, renames) go through the stream.
        watchers = {}
        for n in "ab":
            c = tt.Tree(self.nodes[n].port, timeout=WAIT)
            self.addCleanup(c.close)
            c.sub3()
            watchers[n] = c
        a = tt.Tree(self.nodes["a"].port, timeout=WAIT)
        self.addCleanup(a.close)
        a.put3("d/x.txt", b"xx", tt.PARENTS)
        a.rename("d/x.txt", "d/y.txt")
        a.mkdir("end")
        seen = {}
        for n, c in watchers.items():
            got = []
            while not got or got[-1][2] != "end":
                e = c.next_event()
                got.append((e.seq, e.kind, e.name, e.frm, e.etype))
            seen[n] = got
        self.assertEqual(seen["a"], seen["b"])
        kinds = [g[1:] for g in seen["a"]]
        # The folder once, though every server's watcher saw it made.
        self.assertEqual(kinds.count((tt.ADDED, "d", "", tt.FOLDER)), 1)
        # The rename is one renamed event, or, when another server's
        # watcher saw it before the stream brought it, a removal and an
        # addition (what a rename by another program is).
        if (tt.RENAMED, "d/y.txt", "d/x.txt", tt.FILE) not in kinds:
            self.assertIn((tt.REMOVED, "d/x.txt", "", tt.FILE), kinds)
            self.assertIn((tt.ADDED, "d/y.txt", "", tt.FILE), kinds)
        b = tt.Tree(self.nodes["b"].port, timeout=WAIT)
        self.addCleanup(b.close)
        self.assertEqual(sorted(e[0] for e in b.ls("", tt.LIST_RECURSIVE)),
                         ["d", "d/y.txt", "end"])
        self.assertEqual(b.get("d/y.txt"), b"xx")

    def test_cluster_nats_down_refuses_writes_serves_reads(self):
        # The answer to an upload does not wait for the other servers: watch
        # first, so that the event of "kept" is not taken for a later one.
        w, (epoch, seq0) = self.watch("c")
        self.client("a").put("kept", b"k" * 5)
        self.assertEqual(self.events(w, 1)[0][2], "kept")
        self.nats.stop()
        a = self.client("a")
        tries = []

        def refused():
            tries.append(1)
            try:
                a.put("try%d" % len(tries), b"n")  # not refused yet
            except fc.FspError as e:
                return e
            return None

        err = fsdrun.wait_until(refused, timeout=WAIT, step=0.2)
        self.assertIsNotNone(err, "uploads refused without NATS")
        self.assertEqual(err.name, "BUSY")
        self.assertIn("cluster log unreachable", err.message)
        self.assertEqual(self.client("b").get("kept"), b"k" * 5)
        self.nats.start()

        def accepted():
            try:
                a.put("new", b"n" * 3)
                return True
            except fc.FspError:
                return False

        self.assertTrue(fsdrun.wait_until(accepted, timeout=WAIT, step=0.2))
        evs = self.events(w, 1)
        self.assertEqual(evs[-1][2:], ("new", 3))


class NatsClusterTest(unittest.TestCase):
    """Three NATS servers in one JetStream cluster, a stream with three
    replicas, two fsd: one NATS server killed loses nothing."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fsd-natscluster-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        routes = ["nats://127.0.0.1:%d" % free_port() for _ in range(3)]
        self.nats = []
        for i in range(3):
            store = os.path.join(self.tmp, "n%d" % i)
            os.mkdir(store)
            n = Nats(store, ["-n", "n%d" % i, "--cluster_name", "fsdtest",
                             "--cluster", routes[i], "--routes",
                             ",".join(routes)])
            self.nats.append(n.start())
            self.addCleanup(n.stop)
        urls = ",".join(n.url for n in self.nats)
        root = os.path.join(self.tmp, "root")
        os.mkdir(root)
        self.nodes = []
        for name in "ab":
            # At debug level the log names each publish and its seq: what
            # a failure prints (below) shows who published what, when.
            srv = fsdrun.Fsd("--cluster", urls, "--node", name,
                             "--cluster-replicas", "3", "--log-level",
                             "debug", root=root)
            # JetStream elects its leaders first: fsd waits for the stream.
            srv.start(timeout=60)
            self.nodes.append(srv)
            self.addCleanup(self.stop_node, srv)

    def stop_node(self, srv):
        self.assertEqual(srv.stop(), 0, "\n".join(srv.log))

    def test_cluster_kill9_of_one_nats_server(self):
        # One client's uploads, one after another, land in the stream in
        # that order, although the other server's watcher sees each file
        # appear in the shared folder and publishes it too when it can,
        # while this server retries its publish during the failover.
        try:
            self.kill9_of_one_nats_server()
        except BaseException:
            for n in self.nodes:
                print("==== log of an fsd\n" + "\n".join(n.log))
            raise

    def kill9_of_one_nats_server(self):
        # An upload is answered once its event is in the stream: during the
        # failover that may take up to fsd's 60 s of publish retries.
        a = fc.Client("127.0.0.1", self.nodes[0].port, timeout=70)
        w = fc.Client("127.0.0.1", self.nodes[1].port, timeout=WAIT)
        self.addCleanup(a.close)
        self.addCleanup(w.close)
        epoch, seq0 = w.subscribe()
        a.put("x0", b"0")
        self.nats[0].proc.kill()
        self.nats[0].proc.wait()
        for i in range(1, 6):
            # A write may be refused while fsd moves to another NATS
            # server; it is then made again.
            def stored():
                try:
                    a.put("x%d" % i, b"%d" % i)
                    return True
                except fc.FspError as e:
                    self.assertEqual(e.name, "BUSY")
                    return False
            self.assertTrue(fsdrun.wait_until(stored, WAIT, 0.2))
        self.assertEqual(ClusterTest.events(w, 6),
                         [(seq0 + 1 + i, fc.EV_ADDED, "x%d" % i, 1)
                          for i in range(6)])


class CommandLineTest(unittest.TestCase):
    """--cluster and its companions, without NATS."""

    def fsd(self, *args):
        tmp = tempfile.mkdtemp(prefix="fsd-cluster-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        return subprocess.run([fsdrun.FSD, "--root", tmp, "--listen",
                               "127.0.0.1:0", *args], capture_output=True,
                              timeout=WAIT)

    def test_cluster_usage_errors(self):
        for args, why in [
                (("--node", "a"), b"need --cluster"),
                (("--cluster", ""), b"--cluster needs"),
                (("--cluster", "nats://h:1", "--cluster-replicas", "6"),
                 b"--cluster-replicas"),
                (("--cluster", "nats://h:1", "--cluster-stream", "a.b"),
                 b"--cluster-stream"),
                (("--cluster", "nats://h:1", "--cluster-retention", "x"),
                 b"--cluster-retention")]:
            r = self.fsd(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(why, r.stderr)

    def test_cluster_without_nats_does_not_start(self):
        r = self.fsd("--cluster", "nats://127.0.0.1:%d" % free_port())
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cluster: cannot connect to nats://", r.stderr)
        self.assertNotIn(b"listening", r.stderr)


def check_refused_without_libnats():
    """In a build without libnats, --cluster is a usage error."""
    r = subprocess.run([fsdrun.FSD, "--cluster", "nats://127.0.0.1:4222"],
                       capture_output=True, timeout=WAIT)
    if r.returncode != 2 or b"without cluster support" not in r.stderr:
        sys.exit("fsd without libnats: --cluster gave %d: %r" %
                 (r.returncode, r.stderr))


def main():
    global FSC
    args = sys.argv[1:]
    built = "yes"
    while len(args) >= 2 and args[0] in ("--fsd", "--fsc", "--built"):
        if args[0] == "--fsd":
            fsdrun.FSD = os.path.abspath(args[1])
        elif args[0] == "--fsc":
            FSC = os.path.abspath(args[1])
        else:
            built = args[1]
        args = args[2:]
    if not fsdrun.FSD:
        sys.exit("usage: test_cluster.py --fsd PATH [unittest args]")
    if built != "yes":
        check_refused_without_libnats()
        print("fsd was built without libnats: cluster tests skipped")
        sys.exit(SKIP)
    if shutil.which("nats-server") is None:
        print("nats-server not found: cluster tests skipped")
        sys.exit(SKIP)
    socket.setdefaulttimeout(WAIT)
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)


if __name__ == "__main__":
    main()
