"""Starts a real fsd for a test: a temporary root, 127.0.0.1 port 0, the
port read back from fsd's "listening on" line. Stops it with SIGTERM and
checks that it exited with status 0."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

FSD = os.environ.get("FSD", "")


class Fsd:
    def __init__(self, *args, root=None, fsd=None, listen="127.0.0.1:0",
                 env=None):
        self.fsd = fsd or FSD
        self.tmp = None
        if root is None:
            self.tmp = tempfile.mkdtemp(prefix="fsd-test-")
            root = os.path.join(self.tmp, "root")
        self.root = root
        self.args = list(args)
        self.log = []
        self.proc = None
        self.port = None
        self.host = None
        self.listen = listen
        self.env = dict(os.environ, **(env or {}))

    def start(self, timeout=10.0):
        cmd = [self.fsd, "--root", self.root, "--listen", self.listen,
               "--log-level", "debug"] + self.args
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, env=self.env)
        found = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"listening on \[?([0-9a-fA-F:.]+?)\]?:(\d+)$",
                              line)
                if m and self.port is None:
                    self.host = m.group(1)
                    self.port = int(m.group(2))
                    found.set()
            found.set()

        self.reader = threading.Thread(target=reader, daemon=True)
        self.reader.start()
        if not found.wait(timeout) or self.port is None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stderr.close()
            raise RuntimeError("fsd did not start:\n" + "\n".join(self.log))
        return self

    def sanitizer_report(self):
        """Lines where ASan or UBSan complained, if any."""
        return [l for l in self.log if "runtime error" in l or
                "Sanitizer" in l]

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def path(self, name):
        return os.path.join(self.root, name)

    def stop(self, timeout=15.0):
        """SIGTERM, wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(5)
        self.proc.stderr.close()
        self.proc = None
        return rc

    def cleanup(self):
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()


def wait_until(pred, timeout=10.0, step=0.05):
    """Polls pred() until true or timeout; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)
