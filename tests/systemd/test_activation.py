#!/usr/bin/env python3
"""fsd started the way systemd starts it, without systemd.

Socket activation is emulated as systemd does it: the test opens the
listening socket, the child gets it as fd 3 with LISTEN_FDS=1 and
LISTEN_PID set to its own pid (a shell sets it to $$ and execs fsd, which
keeps the pid). NOTIFY_SOCKET names a datagram socket the test reads
READY=1, RELOADING=1 and STOPPING=1 from. fsc then talks to fsd through the
passed socket.

Usage: test_activation.py FSD FSC
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

FSD = FSC = None
WAIT = 20.0  # seconds; generous for sanitizer builds on a busy machine


class Notify:
    """The datagram socket NOTIFY_SOCKET names."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def expect(self, what):
        """Reads messages until one holds the line `what`; returns them."""
        seen = []
        self.sock.settimeout(WAIT)
        while True:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                raise AssertionError("no %r from fsd within %ss; got %r" %
                                     (what, WAIT, seen))
            seen.append(msg)
            if what in msg.split("\n"):
                return seen

    def close(self):
        self.sock.close()


class Activation(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, "root")
        os.mkdir(self.root)
        with open(os.path.join(self.root, "hello.txt"), "w") as fh:
            fh.write("hello from a passed socket\n")
        self.notify = Notify(os.path.join(self.tmp.name, "notify"))
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stderr.close()
        self.notify.close()
        self.tmp.cleanup()

    def listener(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        self.addCleanup(s.close)
        return s

    def start(self, fds=(), listen_pid="self", extra_env=None, listen=None):
        """Starts fsd with fds passed from 3 on, as systemd would."""
        env = dict(os.environ)
        env.pop("LISTEN_PID", None)
        env.pop("LISTEN_FDS", None)
        env["NOTIFY_SOCKET"] = self.notify.path
        env.update(extra_env or {})
        args = [FSD, "--root", self.root]
        if listen:
            args += ["--listen", listen]
        # Redirections put each socket at 3, 4, ... in the child; the shell
        # exports LISTEN_PID=$$ and execs fsd, which keeps that pid.
        redir = " ".join("%d<&%d" % (3 + i, s.fileno())
                         for i, s in enumerate(fds))
        setup = ""
        if fds:
            pid = "$$" if listen_pid == "self" else listen_pid
            setup = "LISTEN_PID=%s LISTEN_FDS=%d; export LISTEN_PID " \
                    "LISTEN_FDS; " % (pid, len(fds))
        script = setup + 'exec "$@" ' + redir
        p = subprocess.Popen(["sh", "-c", script, "sh"] + args, env=env,
                             stderr=subprocess.PIPE, text=True,
                             pass_fds=[s.fileno() for s in fds])
        self.procs.append(p)
        return p

    def listening(self, p):
        """The HOST:PORT of fsd's "listening on" line (after its log)."""
        for line in p.stderr:
            if line.startswith("fsd: listening on "):
                return line.split()[-1]
        self.fail("fsd exited without listening")

    def fsc(self, port, *args):
        return subprocess.run([FSC, "-q", "-s", "127.0.0.1:%d" % port] +
                              list(args), capture_output=True, text=True,
                              timeout=WAIT)

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        self.notify.expect("STOPPING=1")
        self.assertEqual(p.wait(timeout=WAIT), 0)

    def test_takes_the_passed_socket_and_says_ready(self):
        lst = self.listener()
        port = lst.getsockname()[1]
        # An address fsd cannot bind: it must not try.
        p = self.start(fds=[lst], listen="192.0.2.1:7878")
        self.notify.expect("READY=1")
        r = self.fsc(port, "get", "hello.txt", "-o", "-")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "hello from a passed socket\n")
        self.assertEqual(self.listening(p), "127.0.0.1:%d" % port)
        self.stop(p)

    def test_sighup_reloads_and_keeps_serving(self):
        lst = self.listener()
        port = lst.getsockname()[1]
        p = self.start(fds=[lst])
        self.notify.expect("READY=1")
        # A file added behind fsd's back is listed after the reload's rescan
        # at the latest.
        with open(os.path.join(self.root, "later.txt"), "w") as fh:
            fh.write("x")
        p.send_signal(signal.SIGHUP)
        self.notify.expect("RELOADING=1")
        self.notify.expect("READY=1")
        self.assertIsNone(p.poll(), "fsd died of SIGHUP")
        r = self.fsc(port, "ls")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["hello.txt", "later.txt"])
        self.stop(p)

    def test_notify_without_activation(self):
        # Type=notify without fsd.socket: fsd binds --listen itself.
        p = self.start(listen="127.0.0.1:0")
        self.notify.expect("READY=1")
        host, port = self.listening(p).rsplit(":", 1)
        self.assertEqual(host, "127.0.0.1")
        port = int(port)
        r = self.fsc(port, "size", "hello.txt")
        self.assertEqual(r.stdout.strip(), "27", r.stderr)
        self.stop(p)

    def test_sockets_meant_for_another_process_are_ignored(self):
        lst = self.listener()
        p = self.start(fds=[lst], listen_pid="1", listen="127.0.0.1:0")
        self.notify.expect("READY=1")
        host, port = self.listening(p).rsplit(":", 1)
        self.assertEqual(host, "127.0.0.1")
        self.assertNotEqual(int(port), lst.getsockname()[1])
        self.stop(p)

    def test_two_sockets_are_refused_clearly(self):
        a, b = self.listener(), self.listener()
        p = self.start(fds=[a, b])
        self.assertEqual(p.wait(timeout=WAIT), 1)
        err = p.stderr.read()
        self.assertIn("2 sockets", err)
        self.assertIn("one", err)

    def test_a_passed_socket_that_is_not_listening_is_refused(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        p = self.start(fds=[s])
        self.assertEqual(p.wait(timeout=WAIT), 1)
        self.assertIn("fd 3", p.stderr.read())


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    FSD, FSC = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
