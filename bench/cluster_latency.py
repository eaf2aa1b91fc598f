#!/usr/bin/env python3
"""Event latency in a cluster: the time from an upload's END leaving the
client (on node A) to its EVENT reaching a watcher on node C, against the
same time on one fsd (A = C); and the upload's answer: from END to INFO. Starts nats-server and the fsd itself, on
loopback, in a temporary folder.

Usage: bench/cluster_latency.py --fsd build/server/fsd [--count N]
                                [--rounds R]
Prints two lines per setup and round (event, answer): p50, p99 and max in
microseconds.
Alternates the setups (one, cluster, one, cluster, ...)."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fsd"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402
from test_cluster import Nats  # noqa: E402


def measure(put_port, watch_port, count):
    """Latencies in ns of count uploads through put_port, as seen by a
    watcher on watch_port, and the times in ns of their answers."""
    w = fc.Client("127.0.0.1", watch_port, timeout=30)
    w.subscribe()
    a = fc.Client("127.0.0.1", put_port, timeout=30)
    sent = {}
    seen = {}
    answers = []
    done = threading.Event()

    def watcher():
        while len(seen) < count:
            e = w.next_event()
            if e.type == "EVENT" and e.name in sent:
                seen[e.name] = time.perf_counter_ns()
        done.set()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    for i in range(count):
        name = "lat%d" % i
        # The END of a one-frame upload: put() sends PUT, DATA, END, and
        # the stamp is taken just before END goes (see Client.put).
        rid = a.request(fc.PUT, fc.put_payload(1, fc.PUT_REPLACE, name))
        a.wait(rid, fc.READY)
        a.send(fc.DATA, rid, b"x")
        sent[name] = time.perf_counter_ns()
        a.send(fc.END, rid, fc.struct.pack(">QQ", 1, fc.xxh3_64(b"x")))
        a.wait(rid, fc.INFO)
        answers.append(time.perf_counter_ns() - sent[name])
    done.wait(60)
    a.close()
    w.close()
    return [seen[n] - sent[n] for n in sent if n in seen], answers


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsd", required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    fsdrun.FSD = os.path.abspath(args.fsd)
    tmp = tempfile.mkdtemp(prefix="fsd-latency-")
    try:
        store = os.path.join(tmp, "nats")
        os.mkdir(store)
        nats = Nats(store).start()
        results = {"one fsd": [], "cluster A->C": []}
        answers = {"one fsd": [], "cluster A->C": []}
        for r in range(args.rounds):
            for setup in results:
                root = os.path.join(tmp, "root%d%s" % (r, setup[0]))
                os.mkdir(root)
                if setup == "one fsd":
                    nodes = [fsdrun.Fsd("--no-fsync", root=root).start()]
                else:
                    nodes = [fsdrun.Fsd("--no-fsync", "--cluster", nats.url,
                                        "--cluster-stream", "LAT%d" % r,
                                        "--node", n, root=root).start()
                             for n in "abc"]
                try:
                    lat, ans = measure(nodes[0].port, nodes[-1].port,
                                       args.count)
                finally:
                    for n in nodes:
                        n.stop()
                results[setup] += lat
                answers[setup] += ans
                for what, v in (("event", lat), ("answer", ans)):
                    print("%-13s %-6s round %d: n=%d p50 %.0f us, "
                          "p99 %.0f us, max %.0f us" %
                          (setup, what, r + 1, len(v), pct(v, 0.5) / 1e3,
                           pct(v, 0.99) / 1e3, max(v) / 1e3), flush=True)
        for setup in results:
            for what, v in (("event", results[setup]),
                            ("answer", answers[setup])):
                print("%-13s %-6s all: n=%d p50 %.0f us, p99 %.0f us, "
                      "mean %.0f us" % (setup, what, len(v), pct(v, 0.5) / 1e3,
                                        pct(v, 0.99) / 1e3,
                                        statistics.mean(v) / 1e3))
        nats.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
