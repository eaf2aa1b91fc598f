#!/usr/bin/env python3
"""Integration tests of fsc against a real fsd.

Usage: fsc_it.py FSD FSC CASE

Each CASE starts its own fsd on 127.0.0.1:0 with a fresh root folder (the
port is read back from fsd's "listening on HOST:PORT" line on stderr), runs
fsc the way a user would, and checks what the user would check: exit codes,
output, files on both sides. Exit status 0 = pass, 1 = fail, 77 = skip.
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

LISTEN_RE = re.compile(r"listening on (\S+)")
TIMEOUT = 30


class Failure(Exception):
    pass


def check(cond, what, *details):
    if not cond:
        raise Failure(what + "".join("\n  " + str(d) for d in details))


class Env:
    """A running fsd plus a scratch folder for the client side."""

    def __init__(self, fsd, fsc, listen="127.0.0.1:0", fsd_args=()):
        self.fsd_path = fsd
        self.fsd_args = list(fsd_args)
        self.fsc_path = fsc
        self.tmp = tempfile.mkdtemp(prefix="fsc-it-")
        self.root = os.path.join(self.tmp, "root")
        self.work = os.path.join(self.tmp, "work")
        os.mkdir(self.root)
        os.mkdir(self.work)
        self.tls = os.environ.get("FSC_IT_TLS") == "1"
        if self.tls:
            self._use_tls()
        self.server = None
        self._drain = None
        self._start(listen)

    def _use_tls(self):
        """Runs the case over TLS: fsd with --tls and its own key folder,
        every fsc (through a wrapper, so that cases that start fsc
        themselves are covered) with --tls, trusting on first use into a
        known_servers of its own."""
        self.fsd_args += ["--tls", "--state-dir",
                          os.path.join(self.tmp, "state")]
        os.environ["XDG_CONFIG_HOME"] = os.path.join(self.tmp, "cfg")
        self.known = os.path.join(self.tmp, "cfg", "fsc", "known_servers")
        wrapper = os.path.join(self.tmp, "fsc")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec "%s" --tls "$@"\n' % self.fsc_path)
        os.chmod(wrapper, 0o755)
        self.fsc_path = wrapper

    def _start(self, listen):
        self.fsd = subprocess.Popen(
            [self.fsd_path, "--listen", listen, "--root", self.root] +
            self.fsd_args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + TIMEOUT
        seen = []
        server = None
        while time.monotonic() < deadline:
            line = self.fsd.stderr.readline()
            if not line:
                break
            seen.append(line)
            m = LISTEN_RE.search(line)
            if m:
                server = m.group(1)
                break
        if server is None:
            self.close()
            raise Failure("fsd did not say where it listens: %r" % seen)
        self.server = server
        # Keep draining fsd's log so it never blocks on a full pipe; keep
        # it in fsd.log, where a case may wait for a line.
        self.log = os.path.join(self.tmp, "fsd.log")
        with open(self.log, "ab") as log:
            log.write("".join(seen).encode())  # the start-up lines too
            log.flush()
            self._drain = subprocess.Popen(["cat"], stdin=self.fsd.stderr,
                                           stdout=log)
        if self.tls and not os.path.exists(self.known):
            # Trust the server first (tests/tls checks how that is said),
            # so that the cases read the same stderr as in plaintext.
            subprocess.run([self.fsc_path, "-s", server, "ls"], check=True,
                           capture_output=True, timeout=TIMEOUT)

    def stop(self):
        """Stops fsd the way an operator does (SIGTERM)."""
        if self.fsd.poll() is None:
            self.fsd.send_signal(signal.SIGTERM)
            try:
                self.fsd.wait(10)
            except subprocess.TimeoutExpired:
                self.fsd.kill()
                self.fsd.wait()
        if self._drain:
            self._drain.wait()
            self._drain = None

    def restart(self, offline=None):
        """Stops fsd, runs offline() while no server runs, and starts a new
        fsd on the same folder and the same address (fsd binds with
        SO_REUSEADDR, so the port is free again at once)."""
        self.stop()
        if offline:
            offline()
        self._start(self.server)

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def fsc(self, *args, stdin=None, input=None, env=None, server=True,
            timeout=TIMEOUT, preexec=None):
        """Runs fsc to completion; returns (rc, stdout bytes, stderr str)."""
        cmd = [self.fsc_path]
        if server:
            cmd += ["-s", self.server]
        cmd += list(args)
        e = dict(os.environ)
        e.pop("FSC_SERVER", None)
        if env:
            e.update(env)
        p = subprocess.run(cmd, cwd=self.work, input=input,
                           stdin=stdin if input is None else None,
                           capture_output=True, env=e, timeout=timeout,
                           preexec_fn=preexec)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

    def ok(self, *args, **kw):
        rc, out, err = self.fsc(*args, **kw)
        check(rc == 0, "fsc %s: exit %d" % (" ".join(args), rc), err)
        return out

    def spawn(self, *args, **kw):
        return subprocess.Popen([self.fsc_path, "-s", self.server] +
                                list(args), cwd=self.work, **kw)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def on_server(self, name):
        p = os.path.join(self.root, name)
        if not os.path.exists(p):
            return None
        with open(p, "rb") as f:
            return f.read()

    def leftovers(self, folder=None):
        """Temporary files fsc may have left in a folder."""
        folder = folder or self.work
        return [n for n in os.listdir(folder) if ".fsc-" in n]

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def read_line(stream, timeout=TIMEOUT):
    """One line from a pipe, with a deadline."""
    fd = stream.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        check(left > 0, "timed out waiting for a line", buf)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            c = os.read(fd, 1)
            check(c != b"", "stream ended before a line came", buf)
            buf += c
    return buf.decode("utf-8", "replace").rstrip("\n")


# --- Cases ------------------------------------------------------------------

def case_roundtrip(env):
    """put then get gives the same bytes, at the sizes where chunking can
    go wrong, each file in its own command."""
    chunk = 1 << 20
    sizes = {"empty": 0, "one": 1, "chunk": chunk, "chunk1": chunk + 1,
             "multi": 5 * chunk + 12345}
    for name, size in sizes.items():
        data = os.urandom(size)
        env.write(name, data)
        env.ok("put", name)
        check(env.on_server(name) == data, "server copy differs: " + name)
        os.unlink(env.path(name))
        env.ok("get", name)
        check(env.read(name) == data, "downloaded copy differs: " + name)
    check(env.leftovers() == [], "temporary files left", env.leftovers())


def case_many_files(env):
    """Several files in one put and one get (requests in flight together),
    into a folder given with -o."""
    files = {"f%02d.bin" % i: os.urandom(i * 77777) for i in range(12)}
    for n, d in files.items():
        env.write(n, d)
    env.ok("-q", "put", *files)
    for n, d in files.items():
        check(env.on_server(n) == d, "server copy differs: " + n)
    os.mkdir(env.path("dl"))
    env.ok("get", *files, "-o", "dl")
    for n, d in files.items():
        check(env.read(os.path.join("dl", n)) == d, "copy differs: " + n)
    check(env.leftovers(env.path("dl")) == [], "temporary files left")
    # Several NAMEs need a folder.
    rc, _, err = env.fsc("get", "f01.bin", "f02.bin", "-o", "nofolder")
    check(rc == 2 and "not a folder" in err, "get many -o file", rc, err)
    # One NAME with -o names the file.
    env.ok("get", "f03.bin", "-o", "renamed.bin")
    check(env.read("renamed.bin") == files["f03.bin"], "get -o FILE")


def case_stdio(env):
    """put - reads stdin (with --as), get -o - writes stdout."""
    data = os.urandom(3 * (1 << 20) + 7)
    env.ok("put", "-", "--as", "piped.bin", input=data)
    check(env.on_server("piped.bin") == data, "stdin upload differs")
    out = env.ok("get", "piped.bin", "-o", "-")
    check(out == data, "stdout download differs", len(out))
    # stdin from a regular file is sent without spooling.
    env.write("src", data[:1000])
    with open(env.path("src"), "rb") as f:
        env.ok("put", "-", "--as", "fromfile", stdin=f)
    check(env.on_server("fromfile") == data[:1000], "stdin file differs")
    rc, _, err = env.fsc("put", "-")
    check(rc == 2 and "--as" in err, "put - without --as", rc, err)
    # A named pipe (what bash's <(command) gives) is spooled like stdin.
    fifo = env.path("fifo")
    os.mkfifo(fifo)
    p = env.spawn("put", "fifo", "--as", "from-fifo", stderr=subprocess.PIPE)
    with open(fifo, "wb") as f:
        f.write(data[:70000])
    check(p.wait(TIMEOUT) == 0, "put of a FIFO", p.stderr.read())
    check(env.on_server("from-fifo") == data[:70000], "FIFO upload differs")


def case_ls_size_rm(env):
    """ls output (piped, -l, --json), size, rm, and their exit codes."""
    out = env.ok("ls")
    check(out == b"", "ls of an empty server", out)
    for name, size in (("b.txt", 10), ("a.txt", 2048), ("C", 0)):
        with open(os.path.join(env.root, name), "wb") as f:
            f.write(b"x" * size)
    # fsd notices files that other programs put in its folder, but maybe
    # not at once.
    deadline = time.monotonic() + TIMEOUT
    while env.fsc("ls")[1] != b"C\na.txt\nb.txt\n":
        check(time.monotonic() < deadline, "fsd never saw the files")
        time.sleep(0.1)
    out = env.ok("ls").decode()
    check(out == "C\na.txt\nb.txt\n", "ls piped: one sorted name per line",
          out)
    out = env.ok("ls", "-l").decode().splitlines()
    check(len(out) == 3 and out[1].split()[0] == "2048" and
          out[1].endswith("  a.txt") and
          re.match(r"^ *0  \d{4}-\d\d-\d\d \d\d:\d\d  C$", out[0]),
          "ls -l", out)
    out = env.ok("ls", "-lh").decode().splitlines()
    check(out[1].split()[0] == "2.0K", "ls -lh", out)
    lines = env.ok("ls", "--json").decode().splitlines()
    objs = [json.loads(x) for x in lines]
    check([o["name"] for o in objs] == ["C", "a.txt", "b.txt"] and
          objs[1]["size"] == 2048 and isinstance(objs[1]["mtime_ns"], int),
          "ls --json", lines)
    check(env.ok("size", "a.txt") == b"2048\n", "size of one file")
    check(env.ok("size", "-h", "a.txt") == b"2.0K\n", "size -h")
    out = env.ok("size", "b.txt", "a.txt").decode()
    check(out == "10\tb.txt\n2048\ta.txt\n", "size of several files", out)
    rc, out, err = env.fsc("size", "a.txt", "nope")
    check(rc == 1 and out == b"2048\ta.txt\n", "size with a missing file",
          rc, out)
    check("nope" in err and "no such file" in err, "size error names it",
          err)
    env.ok("rm", "a.txt", "C")
    check(env.on_server("a.txt") is None and env.on_server("C") is None,
          "rm removed the files")
    check(env.ok("ls") == b"b.txt\n", "ls after rm")
    rc, _, err = env.fsc("rm", "a.txt")
    check(rc == 1 and "rm a.txt" in err and "no such file" in err,
          "rm of a missing file", rc, err)
    check(err.count("\n") == 1, "one-line error", err)


def case_missing_file(env):
    """get of a file that does not exist: exit 1, a one-line error naming
    it, no file and no temporary file left."""
    rc, out, err = env.fsc("get", "ghost.txt")
    check(rc == 1, "exit status", rc, err)
    check(err.startswith("fsc: get ghost.txt: ") and "no such file" in err,
          "error names the file and the server's message", err)
    check(err.count("\n") == 1, "one-line error", err)
    check(os.listdir(env.work) == [], "nothing left", os.listdir(env.work))
    # With other files in the same command, the good ones still arrive.
    env.write("real", b"data")
    env.ok("put", "real")
    os.unlink(env.path("real"))
    rc, out, err = env.fsc("get", "ghost.txt", "real")
    check(rc == 1 and env.read("real") == b"data", "partial success", rc)
    # A target in a folder that does not exist: the local error, named.
    missing = os.path.join(env.tmp, "nowhere", "x")
    rc, out, err = env.fsc("get", "real", "-o", missing)
    check(rc == 1 and missing in err and "no such file or directory" in err,
          "target folder missing", rc, err)


def case_bad_name(env):
    """Names that would escape the folder or break the rules are refused
    before anything touches the disk."""
    # ("a/b" is a path on a server with folders: fsc_tree_it.py.)
    for name in ("../escape", ".hidden", "..", "x/../../escape"):
        rc, _, err = env.fsc("get", name, "-o", env.work)
        check(rc == 1 and "invalid file name" in err, "get " + name, rc, err)
        rc, _, err = env.fsc("size", name)
        check(rc == 1 and "invalid file name" in err, "size " + name, rc, err)
    env.write("ok.txt", b"1")
    rc, _, err = env.fsc("put", "ok.txt", "--as", ".dot")
    check(rc == 1 and "invalid file name" in err, "put --as .dot", rc, err)
    check(not os.path.exists(os.path.join(env.tmp, "escape")),
          "nothing written outside")
    check(os.listdir(env.root) == [], "nothing stored", os.listdir(env.root))


def case_no_server(env):
    """Nothing listening: exit 3 with a clear message."""
    env.close_port = None
    # A port that was just free: bind, note it, close.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, _, err = env.fsc("-s", "127.0.0.1:%d" % port, "ls", server=False)
    check(rc == 3 and "cannot connect" in err, "exit 3", rc, err)
    rc, _, err = env.fsc("ls", server=False,
                         env={"FSC_SERVER": "127.0.0.1:%d" % port})
    check(rc == 3, "FSC_SERVER is used", rc, err)
    # The connection breaking mid-command is exit 3 too.
    env.fsd.send_signal(signal.SIGKILL)
    env.fsd.wait()
    rc, _, err = env.fsc("ls")
    check(rc == 3, "server gone", rc, err)


def case_usage(env):
    """--help, --version and usage errors (exit 2)."""
    rc, out, _ = env.fsc("--help", server=False)
    out = out.decode()
    check(rc == 0 and "Usage: fsc" in out and "3    cannot connect" in out,
          "--help lists commands and exit codes", out)
    for cmd in ("ls", "size", "rm", "get", "put", "watch", "announce",
                "shell"):
        rc, out, _ = env.fsc(cmd, "--help", server=False)
        check(rc == 0 and out.decode().startswith("Usage: fsc " + cmd),
              cmd + " --help", out)
    rc, out, _ = env.fsc("--version", server=False)
    check(rc == 0 and out.startswith(b"fsc "), "--version", out)
    for args in ([], ["frob"], ["ls", "-z"], ["size"], ["get"],
                 ["-s", "nocolon", "ls"]):
        rc, _, err = env.fsc(*args, server=False)
        check(rc == 2 and err.startswith("fsc: ") and err.count("\n") == 1,
              "usage error for %r" % args, rc, err)


def case_no_clobber(env):
    """put --no-clobber refuses to replace; plain put replaces."""
    env.write("f", b"first")
    env.ok("put", "f")
    env.write("f", b"second")
    rc, _, err = env.fsc("put", "f", "--no-clobber")
    check(rc == 1 and "put f" in err and "exist" in err, "no-clobber", rc,
          err)
    check(env.on_server("f") == b"first", "file untouched")
    env.ok("put", "f")
    check(env.on_server("f") == b"second", "plain put replaces")
    env.ok("put", "f", "--as", "g", "--no-clobber")
    check(env.on_server("g") == b"second", "no-clobber of a new name")


def case_resume(env):
    """get -c resumes from NAME.fsc-part after checking it with HASH."""
    data = os.urandom(8 * (1 << 20) + 333)
    env.write("big", data)
    env.ok("put", "big")
    os.unlink(env.path("big"))
    # A partial copy from an earlier attempt: the first 3 MiB + a bit.
    env.write("big.fsc-part", data[:3 * (1 << 20) + 5])
    env.ok("get", "-c", "big")
    check(env.read("big") == data, "resumed download differs")
    check(env.leftovers() == [], "part file removed", env.leftovers())
    # A partial copy that does not match: thrown away, full download.
    os.unlink(env.path("big"))
    env.write("big.fsc-part", b"garbage" * 1000)
    env.ok("get", "--continue", "big")
    check(env.read("big") == data, "restarted download differs")
    check(env.leftovers() == [], "part file removed", env.leftovers())
    # A partial copy as long as the file: nothing left to fetch.
    os.unlink(env.path("big"))
    env.write("big.fsc-part", data)
    env.ok("get", "-c", "big")
    check(env.read("big") == data, "complete part")


def case_resume_interrupted(env):
    """A download that breaks half way (here: the file size limit makes the
    disk refuse more bytes) keeps its part under get -c; a second get -c
    finishes it from there. Without -c nothing is left."""
    data = os.urandom(6 * (1 << 20))
    env.write("big", data)
    env.ok("put", "big")
    os.unlink(env.path("big"))
    import resource
    limit = 2 * (1 << 20) + 100

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # Limits inside and at the edge of a write: a short write must never
    # pass for a whole one (libuv reports it as bytes written).
    for lim in (limit, (1 << 20) + 7, 3 * (1 << 20) - 1, 4 * (1 << 20)):
        def disk(lim=lim):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim))
        rc, _, err = env.fsc("get", "big", preexec=disk)
        check(rc == 1 and "cannot write" in err, "write error reported",
              lim, rc, err)
        check(os.listdir(env.work) == [], "no partial target without -c",
              os.listdir(env.work))
    rc, _, err = env.fsc("get", "-c", "big", preexec=small_disk)
    check(rc == 1, "interrupted get -c fails", rc, err)
    check("big.fsc-part" in err, "message names the kept part", err)
    part = env.read("big.fsc-part")
    check(0 < len(part) <= limit and part == data[:len(part)],
          "the part is a prefix", len(part))
    check(not os.path.exists(env.path("big")), "no target yet")
    env.ok("get", "-c", "big")
    check(env.read("big") == data, "resumed download differs")
    check(env.leftovers() == [], "part removed", env.leftovers())


def check_no_partial(env, name, data):
    """After Ctrl-C the target is absent, or whole: the signal can land
    while the verified download is being renamed into place. Returns
    whether it is there (and then removes it)."""
    if not os.path.exists(env.path(name)):
        return False
    check(env.read(name) == data, "no partial target",
          len(env.read(name)), len(data))
    check(env.leftovers() == [], "no temporary file", env.leftovers())
    os.unlink(env.path(name))
    return True


def wait_for_part(env, proc, limit=10.0):
    """Waits until a download has written its first bytes to a temporary
    file (or ended), so that a signal sent next lands mid-transfer."""
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        for n in env.leftovers():
            try:
                if os.path.getsize(env.path(n)) > 0:
                    return
            except OSError:
                pass
        time.sleep(0.001)


def case_interrupt(env):
    """Ctrl-C: an upload from a pipe that never ends is canceled and
    leaves nothing on the server; a download leaves no partial target."""
    # kill (SIGTERM) cleans up the same way as Ctrl-C.
    for name, sig, code in (("never.bin", signal.SIGINT, 130),
                            ("killed.bin", signal.SIGTERM, 143)):
        p = env.spawn("put", "-", "--as", name, stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(os.urandom(1 << 20))
        p.stdin.flush()
        time.sleep(0.3)
        p.send_signal(sig)
        rc = p.wait(TIMEOUT)
        p.stdin.close()
        check(rc == code, "put stopped by %s: exit %d" % (sig.name, code), rc,
              p.stderr.read())
        check(env.on_server(name) is None, "nothing stored", name)
    check([n for n in os.listdir(env.root)] == [], "no trace on the server",
          os.listdir(env.root))

    data = os.urandom(96 * (1 << 20))
    env.write("src", data)
    env.ok("put", "src", "--as", "big")
    for attempt in range(3):
        p = env.spawn("get", "big", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
        if attempt > 0:
            wait_for_part(env, p)
        p.send_signal(signal.SIGINT)
        rc = p.wait(TIMEOUT)
        if rc == 0:
            check(env.read("big") == data, "completed despite Ctrl-C")
            os.unlink(env.path("big"))
        elif rc == -signal.SIGINT:
            pass  # interrupted before it even set up its handler
        else:
            check(rc == 130, "exit 130", rc, p.stderr.read())
            check_no_partial(env, "big", data)
        check(env.leftovers() == [], "no temporary file", env.leftovers())


def case_watch(env):
    """watch prints another client's put and rm, and an announce; --json
    gives one object per line; Ctrl-C ends it with status 0."""
    w = env.spawn("watch", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wj = env.spawn("watch", "--json", stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    try:
        check("watching" in read_line(w.stderr), "watch is ready")
        check("watching" in read_line(wj.stderr), "watch --json is ready")
        env.write("n.txt", b"12345")
        env.ok("put", "n.txt")
        env.ok("rm", "n.txt")
        env.ok("announce", "lunch", "is", "ready")
        env.ok("announce", "bell\x07and\x1b[2Jclear")
        lines = [read_line(w.stdout) for _ in range(4)]
        check(lines[0] == "added n.txt (5 bytes)", "added", lines)
        check(lines[1] == "removed n.txt", "removed", lines)
        check(lines[2] == "notice: lunch is ready", "notice", lines)
        check(lines[3] == "notice: bell\\x07and\\x1b[2Jclear",
              "control characters escaped", lines)
        objs = [json.loads(read_line(wj.stdout)) for _ in range(4)]
        check(objs[0]["type"] == "event" and objs[0]["kind"] == "added" and
              objs[0]["name"] == "n.txt" and objs[0]["size"] == 5,
              "json added", objs)
        check(objs[1]["kind"] == "removed", "json removed", objs)
        check(objs[2] == {"type": "notice", "text": "lunch is ready"},
              "json notice", objs)
        check(objs[3]["text"] == "bell\x07and\x1b[2Jclear", "json text",
              objs)
        for p in (w, wj):
            p.send_signal(signal.SIGINT)
            check(p.wait(TIMEOUT) == 0, "watch ends with 0 on Ctrl-C")
    finally:
        for p in (w, wj):
            if p.poll() is None:
                p.kill()
                p.wait()


class Lines:
    """Reads whole lines from a pipe in big chunks, with a deadline."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buf = b""

    def next(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            check(left > 0, "timed out waiting for a line", self.buf[-200:])
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 1 << 16)
                check(chunk != b"", "stream ended before a line came",
                      self.buf[-200:])
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")


def stop_watch(p):
    """Ctrl-C ends a watch with status 0; returns what it said on stderr."""
    p.send_signal(signal.SIGINT)
    check(p.wait(TIMEOUT) == 0, "watch ends with 0 on Ctrl-C", p.returncode)
    return p.stderr.read().decode("utf-8", "replace")


def case_watch_restart(env):
    """fsd stops while a watch runs, files change in its folder, and fsd
    starts again on the same folder and port: the watch says the connection
    was lost, reconnects by itself, learns that it missed events (a new
    server instance), and prints what changed while it was away as the
    usual event lines, sorted by name; live events follow as before."""
    for name, data in (("keep", b"k"), ("gone", b"g"), ("grows", b"1")):
        env.write(name, data)
        env.ok("put", name)
    w = env.spawn("watch", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        check("watching" in read_line(w.stderr), "watch is ready")
        env.write("live", b"12")
        env.ok("put", "live")
        check(read_line(w.stdout) == "added live (2 bytes)", "live event")

        def offline():
            os.unlink(os.path.join(env.root, "gone"))
            with open(os.path.join(env.root, "grows"), "wb") as f:
                f.write(b"12345")
            with open(os.path.join(env.root, "new"), "wb") as f:
                f.write(b"abc")
            # Let the watch notice the drop and fail a reconnect or two.
            time.sleep(0.5)

        env.restart(offline)
        lines = [read_line(w.stdout) for _ in range(3)]
        check(lines == ["removed gone", "replaced grows (5 bytes)",
                        "added new (3 bytes)"],
              "the changes made while the watch was away", lines)
        env.write("after", b"xyz!")
        env.ok("put", "after")
        check(read_line(w.stdout) == "added after (4 bytes)",
              "live events after the reconnect")
        err = stop_watch(w)
        check("lost" in err and "reconnected" in err and "resync" in err,
              "the watch says it lost the connection, reconnected and "
              "listed again", err)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()


def case_watch_retry(env):
    """--retry N gives up after N failed reconnects in a row (exit 3);
    --retry 0 does not reconnect at all. Other commands exit 3 on a lost
    connection as before."""
    rc, _, err = env.fsc("watch", "--retry", "many")
    check(rc == 2 and "--retry" in err, "--retry needs a number", rc, err)
    rc, out, _ = env.fsc("watch", "--help")
    check(b"--retry" in out and b"reconnect" in out, "help tells", out)
    w2 = env.spawn("watch", "--retry", "2", stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    w0 = env.spawn("watch", "--retry=0", stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    wf = env.spawn("watch", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        check("watching" in read_line(w2.stderr), "watch --retry 2 ready")
        check("watching" in read_line(w0.stderr), "watch --retry 0 ready")
        check("watching" in read_line(wf.stderr), "watch ready")
        env.stop()
        for p, what in ((w0, "--retry 0"), (w2, "--retry 2")):
            rc = p.wait(TIMEOUT)
            err = p.stderr.read().decode("utf-8", "replace")
            check(rc == 3, "watch %s exits 3 once it gives up" % what, rc,
                  err)
            check("lost" in err, "watch %s says why" % what, err)
        # Without --retry it keeps trying; Ctrl-C still ends it with 0.
        check("lost" in read_line(wf.stderr), "watch says it lost the server")
        check("cannot reconnect" in read_line(wf.stderr), "and retries")
        check(wf.poll() is None, "watch keeps trying")
        stop_watch(wf)
    finally:
        for p in (w0, w2, wf):
            if p.poll() is None:
                p.kill()
                p.wait()


def case_watch_output_closed(env):
    """A watch whose reader has gone (`fsc watch | head -1`) ends at its
    next line instead of running on unseen; the failed write makes it exit
    1."""
    w = env.spawn("watch", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        check("watching" in read_line(w.stderr), "watch is ready")
        env.write("one", b"1")
        env.ok("put", "one")
        check(read_line(w.stdout) == "added one (1 bytes)", "first line")
        w.stdout.close()  # the reader goes away
        env.ok("rm", "one")
        try:
            rc = w.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Failure("the watch runs on with nobody reading it")
        check(rc == 1, "the watch ends with 1", rc,
              w.stderr.read().decode("utf-8", "replace"))
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()


class RawClient:
    """A bare fsproto connection, for what fsc cannot be made to do."""

    def __init__(self, server):
        host, port = server.rsplit(":", 1)
        self.sock = socket.create_connection((host.strip("[]"), int(port)),
                                             timeout=TIMEOUT)
        self.buf = b""
        # HELLO: version 1, max_payload 1 MiB, max_inflight 16, no caps.
        self.send(0x01, 0, struct.pack(">HHIIQ", 1, 0, 1 << 20, 16, 0) +
                  b"fsc_it")
        op, _, _ = self.recv()
        check(op == 0x01, "the server answers HELLO", op)

    def send(self, op, rid, payload):
        self.sock.sendall(struct.pack(">BBBBII", 0xF5, 1, op, 0, rid,
                                      len(payload)) + payload)

    def recv(self):
        while True:
            if len(self.buf) >= 12:
                _, _, op, _, rid, n = struct.unpack(">BBBBII", self.buf[:12])
                if len(self.buf) >= 12 + n:
                    payload = self.buf[12:12 + n]
                    self.buf = self.buf[12 + n:]
                    return op, rid, payload
            chunk = self.sock.recv(1 << 16)
            check(chunk != b"", "the server closed the connection")
            self.buf += chunk

    def notices(self, first, count, text):
        """Sends count NOTICEs (ids first...), 8 in flight, and waits for
        their OKs."""
        sent = done = 0
        while done < count:
            while sent < count and sent - done < 8:
                self.send(0x18, first + sent, text)
                sent += 1
            op, rid, _ = self.recv()
            if rid != 0:
                check(op == 0x40, "NOTICE answered OK", op)
                done += 1

    def close(self):
        self.sock.close()


def ls_json(env):
    """The server's files: {name: (size, mtime_ns)}."""
    files = {}
    for line in env.ok("ls", "--json").decode().splitlines():
        o = json.loads(line)
        files[o["name"]] = (o["size"], o["mtime_ns"])
    return files


def case_watch_behind(env):
    """A watch whose output nobody reads falls behind; fsd stops sending it
    events and, once its output has drained, sends one RESYNC. The watch
    says so ({"type":"resync"} with --json), lists again and prints the
    difference, so the state its lines describe ends equal to the server's
    listing, though the events themselves never reached it."""
    for i in range(20):
        env.write("old%02d" % i, b"o" * i)
    env.ok("-q", "put", *["old%02d" % i for i in range(20)])
    before = ls_json(env)
    w = env.spawn("watch", "--json", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    raw = None
    try:
        check("watching" in read_line(w.stderr), "watch is ready")
        # Nobody reads w.stdout now. Notices fill the pipe, the socket
        # buffers and then fsd's queue for the watch, until fsd says (in its
        # debug log) that it is holding events back.
        raw = RawClient(env.server)
        text = b"n" * 4000
        sent = 0
        while True:
            with open(env.log, "rb") as f:
                if b"subscriber behind" in f.read():
                    break
            check(sent < 256 << 20, "fsd never held events back", sent)
            raw.notices(1 + sent // len(text), 256, text)
            sent += 256 * len(text)
        # These changes happen while the watch is behind: it never gets
        # their events.
        for i in range(30):
            env.write("new%02d" % i, b"n" * (i + 1))
        env.ok("-q", "put", *["new%02d" % i for i in range(30)])
        env.write("old05", b"replaced")
        env.ok("-q", "put", "old05")
        env.ok("rm", *["old%02d" % i for i in range(10, 20)])
        listing = ls_json(env)
        check(len(listing) == 40, "server listing", sorted(listing))
        # Now read everything the watch printed: the notices, the resync,
        # then the difference, applied to what the watch knew at the start.
        state = dict(before)
        out = Lines(w.stdout)
        resynced, after = False, []
        deadline = time.monotonic() + 4 * TIMEOUT
        while not resynced or state != listing:
            left = deadline - time.monotonic()
            check(left > 0, "the watch's picture never matched the server",
                  "resynced %s, events %r" % (resynced, after[:5]))
            o = json.loads(out.next(left))
            if o["type"] == "notice":
                continue
            if o["type"] == "resync":
                resynced = True
                continue
            check(o["type"] == "event", "only events and notices", o)
            check(resynced, "no event reached the watch while behind", o)
            after.append(o)
            if o["kind"] == "removed":
                state.pop(o["name"], None)
            else:
                state[o["name"]] = (o["size"], o["mtime_ns"])
        kinds = sorted((o["kind"], o["name"]) for o in after)
        check(("replaced", "old05") in kinds and
              ("removed", "old10") in kinds and ("added", "new00") in kinds,
              "the difference is printed as events", kinds)
        err = stop_watch(w)
        check("lost" not in err, "no reconnect was needed", err)
    finally:
        if raw:
            raw.close()
        if w.poll() is None:
            w.kill()
            w.wait()


class Scripted:
    """A server whose every frame the test sends by hand, for orders of
    events that fsd cannot be made to produce on cue."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(TIMEOUT)
        self.server = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conn = None
        self.buf = b""

    def accept(self):
        """Takes the next connection and answers its HELLO."""
        try:
            self.conn, _ = self.sock.accept()
        except socket.timeout:
            raise Failure("the client did not connect")
        self.conn.settimeout(TIMEOUT)
        self.buf = b""
        op, _, _ = self.expect(0x01)
        self.send(0x01, 0, struct.pack(">HHIIQ", 1, 0, 1 << 20, 64, 6) +
                  b"scripted/1")

    def expect(self, want):
        """The client's next frame, which must have opcode want."""
        while True:
            if len(self.buf) >= 12:
                _, _, op, _, rid, n = struct.unpack(">BBBBII", self.buf[:12])
                if len(self.buf) >= 12 + n:
                    payload = self.buf[12:12 + n]
                    self.buf = self.buf[12 + n:]
                    check(op == want, "client sent 0x%02x, expected 0x%02x"
                          % (op, want))
                    return op, rid, payload
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                raise Failure("no frame 0x%02x from the client" % want)
            check(data != b"", "client closed the connection")
            self.buf += data

    def send(self, op, rid, payload=b""):
        self.conn.sendall(struct.pack(">BBBBII", 0xF5, 1, op, 0, rid,
                                      len(payload)) + payload)

    def entries(self, rid, files):
        body = b"".join(struct.pack(">QqH", size, 0, len(name)) +
                        name.encode() for name, size in files)
        self.send(0x42, rid, struct.pack(">I", len(files)) + body)

    def event(self, seq, kind, name, size):
        self.send(0x60, 0, struct.pack(">QBQq", seq, kind, size, 0) +
                  name.encode())

    def drop(self):
        self.conn.close()
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
        self.sock.close()


def case_watch_resync_cut(env):
    """Against a scripted server: a RESYNC whose LIST is cut off by a
    dropped connection is served after the reconnect (the watch lists
    again although the server replays nothing); the watch subscribes again
    with the epoch and seq it last saw; events during a LIST are printed
    live and count in the difference."""
    srv = Scripted()
    w = subprocess.Popen([env.fsc_path, "-s", srv.server, "watch"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        srv.accept()
        _, rid, p = srv.expect(0x16)  # SUBSCRIBE
        check(struct.unpack(">QQ", p) == (0, 0), "first SUBSCRIBE", p)
        srv.send(0x47, rid, struct.pack(">QQ", 7, 10))  # SUBSCRIBED
        _, rid, _ = srv.expect(0x10)  # LIST
        srv.entries(rid, [("a", 1), ("b", 2)])
        srv.send(0x40, rid)
        check("watching" in read_line(w.stderr), "watch is ready")
        srv.event(11, 1, "c", 3)
        check(read_line(w.stdout) == "added c (3 bytes)", "live event")
        srv.send(0x62, 0, struct.pack(">QQ", 7, 20))  # RESYNC
        check("resync" in read_line(w.stderr), "the watch says resync")
        _, rid, _ = srv.expect(0x10)
        srv.entries(rid, [("a", 1)])
        srv.drop()  # in the middle of the listing
        check("lost" in read_line(w.stderr), "the watch says it lost us")

        srv.accept()
        _, rid, p = srv.expect(0x16)
        check(struct.unpack(">QQ", p) == (7, 20),
              "SUBSCRIBE again with the last epoch and seq", p)
        srv.send(0x47, rid, struct.pack(">QQ", 7, 20))
        _, rid, _ = srv.expect(0x10)  # the cut RESYNC is served now
        srv.entries(rid, [("a", 1), ("c", 3)])
        srv.event(21, 3, "a", 0)  # during the listing
        srv.entries(rid, [("d", 4)])
        srv.send(0x40, rid)
        lines = [read_line(w.stdout) for _ in range(3)]
        check(lines == ["removed a", "removed b", "added d (4 bytes)"],
              "a live event, then the difference", lines)
        # Nothing else: the next line is the next live event.
        srv.event(22, 2, "d", 5)
        check(read_line(w.stdout) == "replaced d (5 bytes)", "live again")
        err = stop_watch(w)
        check("reconnected" in err, "the watch says it reconnected", err)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
        srv.close()


def case_watch_resync_restart(env):
    """Against a scripted server: after a reconnect with seq 0 (no event
    seen yet) the server cannot tell that the watch missed anything, so the
    watch compares the epoch itself and lists again; a RESYNC during that
    LIST makes it list once more when it is done."""
    srv = Scripted()
    w = subprocess.Popen([env.fsc_path, "-s", srv.server, "watch"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        srv.accept()
        _, rid, _ = srv.expect(0x16)
        srv.send(0x47, rid, struct.pack(">QQ", 5, 0))
        _, rid, _ = srv.expect(0x10)
        srv.entries(rid, [("x", 1)])
        srv.send(0x40, rid)
        check("watching" in read_line(w.stderr), "watch is ready")
        srv.drop()
        check("lost" in read_line(w.stderr), "the watch says it lost us")

        srv.accept()  # "restarted": a new epoch
        _, rid, p = srv.expect(0x16)
        check(struct.unpack(">QQ", p) == (5, 0), "SUBSCRIBE again", p)
        srv.send(0x47, rid, struct.pack(">QQ", 9, 0))
        _, rid, _ = srv.expect(0x10)
        srv.entries(rid, [("y", 2)])
        srv.send(0x62, 0, struct.pack(">QQ", 9, 3))  # RESYNC mid-LIST
        srv.send(0x40, rid)
        lines = [read_line(w.stdout) for _ in range(2)]
        check(lines == ["removed x", "added y (2 bytes)"],
              "the difference after the restart", lines)
        _, rid, _ = srv.expect(0x10)  # listed once more
        srv.entries(rid, [("y", 2), ("z", 3)])
        srv.send(0x40, rid)
        check(read_line(w.stdout) == "added z (3 bytes)",
              "the difference after the second RESYNC")
        err = stop_watch(w)
        check("server restarted" in err, "the watch says why it lists",
              err)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
        srv.close()


def case_ipv6(env):
    """An IPv6 server address goes in brackets, with -s and FSC_SERVER."""
    check(env.server.startswith("[::1]:"), "fsd listens on ::1", env.server)
    env.write("six", b"over IPv6")
    env.ok("put", "six")
    rc, out, err = env.fsc("get", "six", "-o", "-", server=False,
                           env={"FSC_SERVER": env.server})
    check(rc == 0 and out == b"over IPv6", "get over IPv6", rc, err)
    rc, _, err = env.fsc("-s", "::1:7878", "ls", server=False)
    check(rc == 2, "a bare IPv6 address is a usage error", rc, err)


def case_interrupt_resume(env):
    """Ctrl-C during get -c keeps the partial copy under NAME.fsc-part and
    no target; get -c then completes it."""
    data = os.urandom(128 * (1 << 20))
    env.write("src", data)
    env.ok("put", "src", "--as", "big")
    interrupted = 0
    for _ in range(3):
        p = env.spawn("get", "-c", "big", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
        wait_for_part(env, p)
        p.send_signal(signal.SIGINT)
        rc = p.wait(TIMEOUT)
        err = p.stderr.read().decode()
        if rc == 0:
            os.unlink(env.path("big"))
            continue
        check(rc in (130, -signal.SIGINT), "exit 130", rc, err)
        if check_no_partial(env, "big", data):
            continue
        interrupted += 1
        extra = [n for n in env.leftovers() if n != "big.fsc-part"]
        check(extra == [], "only the part file is left", env.leftovers())
        if os.path.exists(env.path("big.fsc-part")):
            part = env.read("big.fsc-part")
            check(part == data[:len(part)], "the part is a prefix")
        env.ok("get", "-c", "big")
        check(env.read("big") == data, "resumed download differs")
        check(env.leftovers() == [], "part removed", env.leftovers())
        os.unlink(env.path("big"))
    check(interrupted > 0, "no download was interrupted mid-transfer")


class FakeServer:
    """A server that speaks just enough of the protocol to lie: it answers
    GET with a wrong checksum or too few bytes, and LIST with a name that
    would climb out of the folder. fsc must catch every lie."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.server = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def frame(op, rid, payload=b""):
        import struct
        return struct.pack(">BBBBII", 0xF5, 1, op, 0, rid,
                           len(payload)) + payload

    def serve(self):
        import struct
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with conn:
                    self.talk(conn)
            except OSError:
                pass  # the client went away: next one

    def talk(self, conn):
        import struct
        buf = b""
        while True:
            while len(buf) < 12 or len(buf) < 12 + struct.unpack(
                    ">I", buf[8:12])[0]:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            _, _, op, _, rid, n = struct.unpack(">BBBBII", buf[:12])
            payload, buf = buf[12:12 + n], buf[12 + n:]
            conn.sendall(self.answer(op, rid, payload))

    def answer(self, op, rid, payload):
        import struct
        if op == 0x01:  # HELLO
            return self.frame(0x01, 0, struct.pack(
                ">HHIIQ", 1, 0, 1 << 20, 64, 6) + b"liar/1")
        if op == 0x13:  # GET
            name = payload[16:]
            if name == b"corrupt":
                return (self.frame(0x44, rid, struct.pack(">QqQQ", 5, 0, 0, 5))
                        + self.frame(0x20, rid, b"hellO")
                        + self.frame(0x21, rid, struct.pack(">QQ", 5, 0x1234)))
            if name == b"short":
                return (self.frame(0x44, rid,
                                   struct.pack(">QqQQ", 10, 0, 0, 10))
                        + self.frame(0x20, rid, b"hello")
                        + self.frame(0x21, rid, struct.pack(">QQ", 5, 0)))
        if op == 0x10:  # LIST
            name = b"../evil"
            entry = struct.pack(">QqH", 3, 0, len(name)) + name
            return (self.frame(0x42, rid, struct.pack(">I", 1) + entry)
                    + self.frame(0x40, rid))
        if op == 0x04:  # BYE
            return self.frame(0x04, rid, struct.pack(">H", 0))
        return self.frame(0x41, rid, struct.pack(">H", 1) + b"no")

    def close(self):
        self.sock.close()


def case_lying_server(env):
    """Data that does not match END's checksum or size is thrown away, and
    a name that breaks the rules never reaches the screen or the disk."""
    fake = FakeServer()
    try:
        for name, what in (("corrupt", "checksum mismatch"),
                           ("short", "size mismatch")):
            rc, out, err = env.fsc("-s", fake.server, "get", name,
                                   server=False)
            check(rc == 1 and what in err and name in err, "get " + name,
                  rc, err)
            check(os.listdir(env.work) == [], "nothing kept",
                  os.listdir(env.work))
        rc, out, err = env.fsc("-s", fake.server, "get", "corrupt", "-c",
                               server=False)
        check(rc == 1 and os.listdir(env.work) == [],
              "a corrupt resumable download is not kept", rc,
              os.listdir(env.work))
        rc, out, err = env.fsc("-s", fake.server, "ls", server=False)
        check(rc == 3 and b"evil" not in out and "malformed" in err,
              "ls with a hostile name", rc, out, err)
    finally:
        fake.close()


class Pty:
    """fsc shell on a pseudo-terminal."""

    def __init__(self, argv, cwd):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(cwd)
            os.execv(argv[0], argv)
        self.out = b""

    def expect(self, pattern, timeout=TIMEOUT):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            left = deadline - time.monotonic()
            check(left > 0, "shell did not print %r" % pattern, self.out)
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                check(data != b"", "shell ended", self.out)
                self.out += data

    def send(self, data):
        os.write(self.fd, data)

    def wait(self):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise Failure("shell did not exit")


def case_progress(env):
    """A progress bar (percentage, bar, rate) on a terminal; none with -q
    and none when stderr is not a terminal."""
    data = os.urandom(24 * (1 << 20))
    env.write("p.bin", data)
    os.mkdir(env.path("sub"))
    t = Pty([env.fsc_path, "-s", env.server, "put", "sub/../p.bin"],
            env.work)
    try:
        t.expect(rb"p\.bin +100% \[=+\] 24M/24M")
        check(t.wait() == 0, "put on a terminal exits 0")
    finally:
        os.close(t.fd)
    t = Pty([env.fsc_path, "-s", env.server, "-q", "get", "p.bin", "-o",
             "q.bin"], env.work)
    try:
        check(t.wait() == 0, "get -q exits 0")
        check(b"%" not in t.out and b"ETA" not in t.out, "no bar with -q",
              t.out)
    finally:
        os.close(t.fd)
    check(env.read("q.bin") == data, "get -q copy")
    rc, out, err = env.fsc("get", "p.bin", "-o", "r.bin")
    check(rc == 0 and err == "", "no bar when stderr is a pipe", err)


def case_shell(env):
    """The shell prints an event while idle at its prompt, keeps the line
    being typed, and runs commands."""
    sh = Pty([env.fsc_path, "-s", env.server, "shell"], env.work)
    try:
        sh.expect(rb"fsc> ")
        sh.send(b"ls -")  # a half-typed line
        sh.expect(rb"ls -")
        env.write("ev.txt", b"abc")
        env.ok("put", "ev.txt")
        # The event appears on its own line, then the prompt and the
        # half-typed line are drawn again.
        sh.expect(rb"added ev\.txt \(3 bytes\)\r?\n")
        sh.expect(rb"fsc> ls -")
        sh.send(b"l\r")
        sh.expect(rb"3  \d{4}-\d\d-\d\d \d\d:\d\d  ev\.txt")
        sh.expect(rb"fsc> ")
        env.ok("announce", "hi from afar")
        sh.expect(rb"notice: hi from afar")
        sh.send(b"size nothere\r")
        sh.expect(rb"no such file")
        sh.expect(rb"fsc> ")
        sh.send(b"frobnicate\r")
        sh.expect(rb"unknown command")
        # Ctrl-C at the prompt drops the half-typed line, not the shell;
        # the line editor's history brings back the last command.
        sh.send(b"rm ev.txt\x03")
        sh.expect(rb"\^C\r?\n")
        sh.send(b"\x1b[A")
        sh.expect(rb"fsc> frobnicate")
        sh.send(b"\x15rm ev.txt\r")
        sh.expect(rb"removed ev\.txt")
        sh.send(b"quit\r")
        check(sh.wait() == 0, "shell exits 0")
    finally:
        try:
            os.kill(sh.pid, signal.SIGKILL)
            os.waitpid(sh.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(sh.fd)


def case_shell_script(env):
    """The shell runs commands from a pipe and from a regular file (a
    script), one after the other, and ends with the input; its exit status
    is the highest of its commands'."""
    env.write("s.txt", b"scripted")
    script = b"put s.txt --as one.txt\nput s.txt --as two.txt\nls\n" \
             b"rm one.txt\nsize two.txt"  # no newline after the last line
    rc, out, err = env.fsc("shell", input=script)
    check(rc == 0, "shell from a pipe exits 0", rc, err)
    check(b"one.txt\ntwo.txt\n" in out, "ls ran after both puts", out)
    check(out.rstrip().endswith(b"8"), "the last line ran", out)
    path = env.path("script.fsc")
    with open(path, "wb") as f:
        f.write(b"rm two.txt\nls\nsize gone.txt\nls\n")
    with open(path, "rb") as f:
        rc, out, err = env.fsc("shell", stdin=f)
    check(rc == 1, "a script with a failed command exits 1", rc, err)
    check("no such file" in err, "the failing command said why", err)
    # Besides the event of its own rm, nothing: both ls ran on an empty
    # server.
    check([ln for ln in out.splitlines() if ln != b"removed two.txt"] == [],
          "ls after rm lists nothing", out)
    check(env.on_server("two.txt") is None, "rm ran")
    check(env.on_server("one.txt") is None, "nothing came back")


CASES = {name[5:]: fn for name, fn in globals().items()
         if name.startswith("case_")}
# Extra fsd options for some cases.
FSD_ARGS = {"watch_behind": ["--log-level", "debug"]}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(__doc__ + "\ncases: " + " ".join(CASES), file=sys.stderr)
        return 2
    fsd, fsc, case = sys.argv[1:]
    fsd, fsc = os.path.abspath(fsd), os.path.abspath(fsc)
    try:
        env = Env(fsd, fsc, "[::1]:0" if case == "ipv6" else "127.0.0.1:0",
                  FSD_ARGS.get(case, ()))
    except Failure as e:
        if case == "ipv6":
            print("skip ipv6: %s" % e)
            return 77
        print("FAIL %s: %s" % (case, e), file=sys.stderr)
        return 1
    try:
        CASES[case](env)
    except Failure as e:
        print("FAIL %s: %s" % (case, e), file=sys.stderr)
        return 1
    finally:
        env.close()
    print("ok %s" % case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
