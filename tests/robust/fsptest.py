"""Shared helpers for the hostile-conditions suite.

This module speaks protocol.md directly with struct.pack, so the tests can send
frames that no well-behaved client would build (bad magic, lying lengths,
frames out of sequence). It also starts and stops fsd with a temporary root and
checks that fsd exits cleanly (status 0, no sanitizer report) at the end of
every test.

Only the standard library and libxxhash (through ctypes) are used.
"""

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

# --------------------------------------------------------------------------
# Wire constants (protocol.md sections 2, 5 and 7)

MAGIC = 0xF5
VERSION = 1
HDR = struct.Struct(">BBBBII")
HDR_LEN = HDR.size
MIN_PAYLOAD = 65536
TO_END = 0xFFFFFFFFFFFFFFFF

OP = {
    "HELLO": 0x01, "PING": 0x02, "PONG": 0x03, "BYE": 0x04,
    "LIST": 0x10, "STAT": 0x11, "DELETE": 0x12, "GET": 0x13, "PUT": 0x14,
    "HASH": 0x15, "SUBSCRIBE": 0x16, "UNSUBSCRIBE": 0x17, "NOTICE": 0x18,
    "CANCEL": 0x19, "DATA": 0x20, "END": 0x21,
    "OK": 0x40, "ERROR": 0x41, "ENTRIES": 0x42, "INFO": 0x43, "BEGIN": 0x44,
    "READY": 0x45, "DIGEST": 0x46, "SUBSCRIBED": 0x47,
    "EVENT": 0x60, "NOTIFY": 0x61, "RESYNC": 0x62,
}
OP_NAME = {v: k for k, v in OP.items()}
SERVER_OPS = {OP[n] for n in ("OK", "ERROR", "ENTRIES", "INFO", "BEGIN",
                              "READY", "DIGEST", "SUBSCRIBED", "EVENT",
                              "NOTIFY", "RESYNC")}

ST = {
    "NOT_FOUND": 1, "EXISTS": 2, "BAD_NAME": 3, "TOO_LARGE": 4, "BUSY": 5,
    "IO": 6, "PROTOCOL": 7, "READ_ONLY": 8, "NO_SPACE": 9, "CHECKSUM": 10,
    "SIZE": 11, "UNKNOWN_OP": 12, "VERSION": 13, "CANCELED": 14, "RANGE": 15,
    "SHUTDOWN": 16, "TIMEOUT": 17, "BAD_REQUEST": 18, "LIMIT": 19,
}
ST_NAME = {v: k for k, v in ST.items()}

# The frame that ends each request (ERROR ends any of them).
FINAL = {
    OP["PING"]: OP["PONG"], OP["BYE"]: OP["BYE"], OP["LIST"]: OP["OK"],
    OP["STAT"]: OP["INFO"], OP["DELETE"]: OP["OK"], OP["GET"]: OP["END"],
    OP["PUT"]: OP["INFO"], OP["HASH"]: OP["DIGEST"],
    OP["SUBSCRIBE"]: OP["SUBSCRIBED"], OP["UNSUBSCRIBE"]: OP["OK"],
    OP["NOTICE"]: OP["OK"],
}

# --------------------------------------------------------------------------
# Configuration filled in by main()

CONFIG = {
    "fsd": os.environ.get("FSD", ""),
    "sanitized": False,
}


def slow_factor():
    """How much slower fsd runs in this build: ASan/UBSan cost about 3x."""
    return 3.0 if CONFIG["sanitized"] else 1.0


# --------------------------------------------------------------------------
# Checksums: XXH3-64, seed 0, from the system libxxhash.

def _load_xxhash():
    for cand in ("libxxhash.so.0", ctypes.util.find_library("xxhash")):
        if not cand:
            continue
        try:
            lib = ctypes.CDLL(cand)
        except OSError:
            continue
        lib.XXH3_64bits.restype = ctypes.c_uint64
        lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        return lib
    raise RuntimeError("libxxhash not found")


_XXH = _load_xxhash()


def xxh3(data):
    """XXH3-64 (seed 0) of a bytes-like object."""
    b = bytes(data)
    return _XXH.XXH3_64bits(b, len(b))


assert xxh3(b"") == 0x2D06800538D394C2, "libxxhash does not match protocol.md"

# --------------------------------------------------------------------------
# Frame building


def frame(op, rid=0, payload=b"", magic=MAGIC, version=VERSION, flags=0,
          length=None):
    """Bytes of one frame. length overrides the header's payload length, so a
    test can lie about it."""
    if length is None:
        length = len(payload)
    return HDR.pack(magic, version, op, flags, rid, length) + bytes(payload)


def b_name(name):
    return name.encode() if isinstance(name, str) else bytes(name)


def p_hello(version=1, max_payload=1 << 20, inflight=0, caps=0,
            agent=b"robust-test", reserved=0):
    return struct.pack(">HHIIQ", version, reserved, max_payload, inflight,
                       caps) + agent


def p_range(offset, length, name):
    return struct.pack(">QQ", offset, length) + b_name(name)


def p_put(size, mode, name):
    return struct.pack(">QB", size, mode) + b_name(name)


def p_end(size, h):
    return struct.pack(">QQ", size, h)


class Frame:
    __slots__ = ("op", "flags", "id", "payload")

    def __init__(self, op, flags, rid, payload):
        self.op, self.flags, self.id, self.payload = op, flags, rid, payload

    def status(self):
        """(status, message) of an ERROR frame."""
        assert self.op == OP["ERROR"], self
        (st,) = struct.unpack_from(">H", self.payload)
        return st, self.payload[2:].decode("utf-8", "replace")

    def __repr__(self):
        extra = ""
        if self.op == OP["ERROR"] and len(self.payload) >= 2:
            st, msg = self.status()
            extra = " %s %r" % (ST_NAME.get(st, st), msg)
        return "<%s id=%d len=%d%s>" % (OP_NAME.get(self.op, hex(self.op)),
                                        self.id, len(self.payload), extra)


class Closed(Exception):
    """The server closed the connection."""


class FspError(Exception):
    """A request ended with an ERROR frame."""

    def __init__(self, status, message, rid):
        super().__init__("%s (%d): %s [id %d]" % (
            ST_NAME.get(status, "?"), status, message, rid))
        self.status = status
        self.message = message
        self.id = rid


class Violation(AssertionError):
    """The server broke the protocol (a test failure, not an error frame)."""


# --------------------------------------------------------------------------
# A connection


class Conn:
    """One client connection with a frame reader that checks what the server
    sends. Frames for other ids than the one being waited for are kept in
    self.other; id-0 frames in self.events."""

    def __init__(self, addr, hello=True, timeout=10.0, rcvbuf=None):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(addr)
        self.buf = bytearray()
        self.other = {}
        self.events = []
        self.inflight = {}
        self.stray = []
        self.next_id = 1
        self.server_hello = None
        self.max_payload = MIN_PAYLOAD
        if hello:
            self.hello()

    # ---- raw I/O
    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, op, rid=0, payload=b""):
        self.sock.sendall(frame(op, rid, payload))

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def abort(self):
        """Close with a TCP RST instead of a FIN, as a crashed client would."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        self.close()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no frame from the server in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(str(e))
        if not chunk:
            raise Closed("EOF")
        self.buf += chunk

    def recv_frame(self, timeout=None):
        """Next frame from the server. Raises Closed at EOF or reset,
        socket.timeout when none arrives in time, Violation when the bytes
        are not a valid frame."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < HDR_LEN:
            self._fill(deadline)
        magic, ver, op, flags, rid, length = HDR.unpack_from(self.buf)
        if magic != MAGIC or ver != VERSION or flags != 0:
            raise Violation("server sent a broken header: %r" %
                            bytes(self.buf[:HDR_LEN]))
        if length > (1 << 24):
            raise Violation("server sent a payload of %d bytes" % length)
        while len(self.buf) < HDR_LEN + length:
            self._fill(deadline)
        payload = bytes(self.buf[HDR_LEN:HDR_LEN + length])
        del self.buf[:HDR_LEN + length]
        return Frame(op, flags, rid, payload)

    def poll_frames(self):
        """Frames already readable, without blocking."""
        out = []
        while True:
            try:
                r, _, _ = select.select([self.sock], [], [], 0)
            except (ValueError, OSError):
                return out
            if not r and len(self.buf) < HDR_LEN:
                return out
            try:
                out.append(self.recv_frame(timeout=0.2))
            except socket.timeout:
                return out

    def read_until_closed(self, timeout):
        """Reads frames until the server closes the connection; returns them.
        Fails the test when the connection is still open after timeout."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                frames.append(self.recv_frame(
                    timeout=max(0.01, deadline - time.monotonic())))
            except Closed:
                return frames
            except socket.timeout:
                raise AssertionError(
                    "server kept the connection open for %.1f s; got %r" %
                    (timeout, frames))

    def _route(self, f, want):
        """Files frame f; returns True when it belongs to request want. A
        frame for an id with no request in flight is a stray (a request
        answered twice, or an answer nobody asked for)."""
        if f.id == 0:
            self.events.append(f)
            return False
        op = self.inflight.get(f.id)
        if op is None:
            self.stray.append(f)
        elif f.op == OP["ERROR"] or f.op == FINAL.get(op):
            del self.inflight[f.id]
        if f.id == want:
            return True
        self.other.setdefault(f.id, []).append(f)
        return False

    def frames_for(self, rid, timeout=None):
        """Frames for request rid, up to and including its final frame."""
        out = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            f = self.next_frame_for(
                rid, timeout=max(0.01, deadline - time.monotonic()))
            out.append(f)
            if rid not in self.inflight:
                return out

    def next_frame_for(self, rid, timeout=None):
        """The next single frame for request rid (whose request ended when
        rid is no longer in self.inflight)."""
        pend = self.other.get(rid)
        if pend:
            f = pend.pop(0)
            if not pend:
                del self.other[rid]
            return f
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            f = self.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
            if self._route(f, rid):
                return f

    def new_id(self):
        rid = self.next_id
        self.next_id += 1
        if self.next_id > 0xFFFFFFFF:
            self.next_id = 1
        return rid

    def request(self, op, payload=b"", rid=None):
        """Sends a request; returns its id."""
        if rid is None:
            rid = self.new_id()
        self.inflight[rid] = op
        self.send_frame(op, rid, payload)
        return rid

    def call(self, op, payload=b"", timeout=None):
        """Sends a request and returns its final frame; raises FspError when
        it ended with ERROR."""
        rid = self.request(op, payload)
        frames = self.frames_for(rid, timeout)
        last = frames[-1]
        if last.op == OP["ERROR"]:
            raise FspError(*last.status(), rid)
        return last

    # ---- protocol operations
    def hello(self, **kw):
        self.send_frame(OP["HELLO"], 0, p_hello(**kw))
        while True:
            f = self.recv_frame()
            if f.op == OP["HELLO"] and f.id == 0:
                break
            if f.op == OP["ERROR"] and f.id == 0:
                raise FspError(*f.status(), 0)
            raise Violation("expected HELLO, got %r" % f)
        ver, res, maxp, inflight, caps = struct.unpack_from(">HHIIQ",
                                                            f.payload)
        self.server_hello = {"version": ver, "max_payload": maxp,
                             "max_inflight": inflight, "caps": caps}
        self.max_payload = maxp
        return self.server_hello

    def ping(self, data=b"x"):
        f = self.call(OP["PING"], data)
        if f.payload != data:
            raise Violation("PONG payload differs")

    def stat(self, name, timeout=None):
        f = self.call(OP["STAT"], b_name(name), timeout)
        return struct.unpack(">Qq", f.payload)

    def delete(self, name):
        self.call(OP["DELETE"], b_name(name))

    def hash(self, name, offset=0, length=TO_END):
        f = self.call(OP["HASH"], p_range(offset, length, name))
        return struct.unpack(">QQQ", f.payload)

    def list(self):
        rid = self.request(OP["LIST"])
        out = {}
        for f in self.frames_for(rid):
            if f.op == OP["ERROR"]:
                raise FspError(*f.status(), rid)
            if f.op == OP["ENTRIES"]:
                (count,) = struct.unpack_from(">I", f.payload)
                pos = 4
                for _ in range(count):
                    size, mtime, nlen = struct.unpack_from(">QqH", f.payload,
                                                           pos)
                    pos += 18
                    name = bytes(f.payload[pos:pos + nlen])
                    pos += nlen
                    if name in out:
                        raise Violation("LIST gave %r twice" % name)
                    out[name] = (size, mtime)
                if pos != len(f.payload):
                    raise Violation("ENTRIES does not add up")
            elif f.op != OP["OK"]:
                raise Violation("unexpected %r in LIST" % f)
        return out

    def get(self, name, offset=0, length=TO_END, timeout=None):
        """Downloads; returns (file_size, data). Checks END against the bytes
        received, as protocol.md requires of a receiver."""
        rid = self.request(OP["GET"], p_range(offset, length, name))
        return self.finish_get(rid, timeout)

    def finish_get(self, rid, timeout=None, pre=()):
        """Reads the rest of GET rid; pre are frames of it already read."""
        data = bytearray()
        begin = None
        frames = list(pre)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if frames:
                f = frames.pop(0)
            else:
                f = self.next_frame_for(
                    rid, timeout=max(0.01, deadline - time.monotonic()))
            if f.op == OP["ERROR"]:
                raise FspError(*f.status(), rid)
            if f.op == OP["BEGIN"]:
                if begin is not None:
                    raise Violation("two BEGIN frames")
                begin = struct.unpack(">QqQQ", f.payload)
            elif f.op == OP["DATA"]:
                if begin is None:
                    raise Violation("DATA before BEGIN")
                data += f.payload
            elif f.op == OP["END"]:
                size, h = struct.unpack(">QQ", f.payload)
                if begin is None:
                    raise Violation("END before BEGIN")
                if size != len(data) or size != begin[3]:
                    raise Violation("GET: END says %d bytes, BEGIN %d, got %d"
                                    % (size, begin[3], len(data)))
                if h != xxh3(data):
                    raise Violation("GET: END hash does not match the data")
                return begin[0], bytes(data)
            else:
                raise Violation("unexpected %r in GET" % f)

    def put(self, name, data, mode=0, chunk=65536, size=None, end=None):
        """Uploads data; returns (size, mtime_ns) from INFO. size and end
        override the declared size and the END payload. Stops sending as soon
        as the server ends the request early with an ERROR."""
        data = bytes(data)
        rid = self.request(OP["PUT"], p_put(len(data) if size is None else
                                             size, mode, name))
        f = self.next_frame_for(rid)
        if f.op == OP["ERROR"]:
            raise FspError(*f.status(), rid)
        if f.op != OP["READY"]:
            raise Violation("expected READY, got %r" % f)
        chunk = min(chunk, self.max_payload)
        for pos in range(0, len(data), chunk):
            self.send_frame(OP["DATA"], rid, data[pos:pos + chunk])
            for g in self.poll_frames():
                if self._route(g, rid):
                    if g.op == OP["ERROR"]:
                        raise FspError(*g.status(), rid)
                    raise Violation("unexpected %r during upload" % g)
        self.send_frame(OP["END"], rid,
                        end if end is not None else p_end(len(data),
                                                          xxh3(data)))
        f = self.next_frame_for(rid)
        if f.op == OP["ERROR"]:
            raise FspError(*f.status(), rid)
        if f.op != OP["INFO"]:
            raise Violation("expected INFO, got %r" % f)
        return struct.unpack(">Qq", f.payload)

    def bye(self):
        rid = self.request(OP["BYE"], struct.pack(">H", 0))
        self.frames_for(rid)


# --------------------------------------------------------------------------
# fsd


class Fsd:
    """An fsd process on 127.0.0.1:0 with a given root."""

    LISTEN_RE = re.compile(r"listening on \[?([0-9a-fA-F:.]+?)\]?:(\d+)")

    def __init__(self, root, args=(), preexec_fn=None):
        self.root = root
        self.args = list(args)
        self.preexec_fn = preexec_fn
        self.proc = None
        self.addr = None
        self.log = []
        self.log_lock = threading.Lock()
        self.listening = threading.Event()
        self.conns = []

    def start(self, timeout=None):
        exe = CONFIG["fsd"]
        cmd = [exe, "--root", self.root, "--listen", "127.0.0.1:0"] + \
            self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     preexec_fn=self.preexec_fn)
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()
        if not self.listening.wait(timeout or 10 * slow_factor()):
            self.kill()
            raise AssertionError("fsd did not print 'listening on': %s" %
                                 self.log_tail())
        # What fsd holds open with no client: the test ends with this again.
        self.base_fds = self.fd_count()
        return self

    def _read_log(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.log_lock:
                self.log.append(line)
            if not self.listening.is_set():
                m = self.LISTEN_RE.search(line)
                if m:
                    self.addr = (m.group(1), int(m.group(2)))
                    self.listening.set()

    def log_tail(self, n=40):
        with self.log_lock:
            return "\n".join(self.log[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def fd_targets(self):
        out = []
        d = "/proc/%d/fd" % self.proc.pid
        for n in os.listdir(d):
            try:
                out.append(os.readlink(os.path.join(d, n)))
            except OSError:
                pass
        return sorted(out)

    def connect(self, **kw):
        c = Conn(self.addr, **kw)
        self.conns.append(c)
        return c

    def kill(self):
        if self.alive():
            self.proc.kill()
        if self.proc:
            self.proc.wait()
            self.reader.join(5)
            self.proc.stderr.close()

    def sanitizer_report(self):
        with self.log_lock:
            for i, line in enumerate(self.log):
                if ("Sanitizer" in line and "ERROR" in line) or \
                        "runtime error:" in line:
                    return "\n".join(self.log[i:i + 30])
        return None

    def stop(self, timeout=None):
        """SIGTERM, then waits; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout or 20 * slow_factor())
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "hung after SIGTERM"
        self.reader.join(5)
        self.proc.stderr.close()
        return rc


# --------------------------------------------------------------------------
# Test case base


class FsdCase(unittest.TestCase):
    """Each test gets a temporary folder with root/ and outside/, and starts
    fsd on root/. At the end fsd must still be running (it never crashes),
    must exit 0 on SIGTERM and must print no sanitizer report."""

    fsd_args = ()
    start_fsd = True

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fsd-robust-")
        self.root = os.path.join(self.tmp, "root")
        self.outside = os.path.join(self.tmp, "outside")
        os.mkdir(self.root)
        os.mkdir(self.outside)
        self.servers = []
        self.fsd = self.spawn() if self.start_fsd else None

    def spawn(self, args=None, root=None, preexec_fn=None):
        s = Fsd(root or self.root, self.fsd_args if args is None else args,
                preexec_fn).start()
        self.servers.append(s)
        return s

    def tearDown(self):
        problems = []
        for s in self.servers:
            for c in s.conns:
                c.close()
            s.conns = []
        for s in self.servers:
            if not s.alive() or getattr(s, "killed", False):
                continue
            # With every client gone, fsd is back to the files it held at
            # start: no socket, file or temp file descriptor leaked.
            deadline = time.monotonic() + 5 * slow_factor()
            while s.alive() and s.fd_count() > s.base_fds and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            if s.alive() and s.fd_count() > s.base_fds:
                problems.append("fsd holds %d descriptors, %d at start: %r" %
                                (s.fd_count(), s.base_fds, s.fd_targets()))
        for s in self.servers:
            if s.proc.poll() is not None and not getattr(s, "killed", False):
                problems.append("fsd exited during the test with %r:\n%s" %
                                (s.proc.returncode, s.log_tail()))
                continue
            if getattr(s, "killed", False):
                continue
            rc = s.stop()
            if rc != 0:
                problems.append("fsd exited with %r on SIGTERM:\n%s" %
                                (rc, s.log_tail()))
            rep = s.sanitizer_report()
            if rep:
                problems.append("sanitizer report:\n" + rep)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            self.fail("\n".join(problems))

    def kill9(self, s):
        s.killed = True
        s.kill()

    # ---- checks
    def assert_serving(self, s=None, timeout=None):
        """fsd is alive and a fresh client gets an answer to STAT."""
        s = s or self.fsd
        self.assertTrue(s.alive(), "fsd died:\n" + s.log_tail())
        c = s.connect(timeout=timeout or 10 * slow_factor())
        try:
            with self.assertRaises(FspError) as cm:
                c.stat("no-such-file-probe")
            self.assertEqual(cm.exception.status, ST["NOT_FOUND"])
        finally:
            c.close()

    def assert_error(self, frames_or_exc, status, rid=None):
        """An ERROR frame (or FspError) with the given status name(s)."""
        names = (status,) if isinstance(status, str) else tuple(status)
        codes = [ST[n] for n in names]
        if isinstance(frames_or_exc, FspError):
            got = frames_or_exc.status
            self.assertIn(got, codes, "expected %s, got %s" %
                          (names, frames_or_exc))
            if rid is not None:
                self.assertEqual(frames_or_exc.id, rid)
            return
        errs = [f for f in frames_or_exc if f.op == OP["ERROR"]]
        self.assertTrue(errs, "expected ERROR %s, got %r" %
                        (names, frames_or_exc))
        st, _ = errs[0].status()
        self.assertIn(st, codes, "expected %s, got %r" % (names, errs[0]))
        if rid is not None:
            self.assertEqual(errs[0].id, rid)

    def expect_error(self, status, fn, *a, **kw):
        with self.assertRaises(FspError) as cm:
            fn(*a, **kw)
        self.assert_error(cm.exception, status)
        return cm.exception

    def root_names(self):
        return sorted(os.listdir(self.root))

    def wait_for(self, pred, timeout, what):
        """Polls pred until true; fails with what after timeout."""
        deadline = time.monotonic() + timeout * slow_factor()
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)


def snapshot(paths):
    """Content hash, size, mode and mtime of every file below paths (symlinks
    recorded by target, not followed)."""
    out = {}
    for top in paths:
        if os.path.isfile(top) and not os.path.islink(top):
            st = os.lstat(top)
            with open(top, "rb") as f:
                out[top] = (xxh3(f.read()), st.st_size, st.st_mode,
                            st.st_mtime_ns)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                if os.path.islink(p):
                    out[p] = ("link", os.readlink(p), st.st_mtime_ns)
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        out[p] = (xxh3(f.read()), st.st_size, st.st_mode,
                                  st.st_mtime_ns)
                else:
                    out[p] = ("dir", st.st_mode)
    return out


def rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def raise_nofile(want):
    """Raises this process's open-file soft limit; returns the new limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(hard, want) if hard != resource.RLIM_INFINITY else want
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    """Entry point of each test script: --fsd PATH [--sanitized]. Exits 77
    (meson's "skipped") when every test was skipped."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsd", default=CONFIG["fsd"])
    ap.add_argument("--sanitized", action="store_true")
    opts, rest = ap.parse_known_args()
    CONFIG["fsd"] = os.path.abspath(opts.fsd) if opts.fsd else ""
    CONFIG["sanitized"] = opts.sanitized
    if not CONFIG["fsd"] or not os.access(CONFIG["fsd"], os.X_OK):
        print("fsd not found: %r" % CONFIG["fsd"])
        sys.exit(77)
    random.seed(os.environ.get("ROBUST_SEED", "fsd-robust"))
    # Sockets of connections the server dropped are closed by the garbage
    # collector; saying so for each one only hides real failures.
    warnings.simplefilter("ignore", ResourceWarning)
    prog = unittest.main(module="__main__", argv=[sys.argv[0], "-v"] + rest,
                         exit=False)
    res = prog.result
    if not res.wasSuccessful():
        sys.exit(1)
    if res.testsRun and len(res.skipped) == res.testsRun:
        sys.exit(77)
    sys.exit(0)
