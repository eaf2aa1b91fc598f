"""fspclient: a small client for the fsproto protocol (protocol.md), version 1.

Written from protocol.md alone, with the Python standard library only; the
XXH3-64 checksum comes from the system's libxxhash through ctypes. It is
meant for tests and scripts:

    with fspclient.Client("127.0.0.1", 7878) as c:
        c.put("a.txt", b"hello")
        assert c.get("a.txt") == b"hello"
        print(c.list())

Requests are synchronous by default (send, then wait for the final frame),
but the building blocks (request(), wait(), read_frame()) allow many
requests in flight. Frames with request id 0 that are events (EVENT, NOTIFY,
RESYNC) are queued and read with next_event(); any other frame for an id
nobody waits for yet is kept until someone does.
"""

import collections
import ctypes
import ctypes.util
import socket
import struct

# ---------------------------------------------------------------------------
# Wire constants

MAGIC = 0xF5
VERSION = 1
HDR = struct.Struct(">BBBBII")  # magic, version, opcode, flags, id, length
HDR_LEN = HDR.size
MIN_PAYLOAD = 65536
DEFAULT_PAYLOAD = 1 << 20
TO_END = 0xFFFFFFFFFFFFFFFF

HELLO, PING, PONG, BYE = 0x01, 0x02, 0x03, 0x04
LIST, STAT, DELETE, GET, PUT, HASH = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
SUBSCRIBE, UNSUBSCRIBE, NOTICE, CANCEL = 0x16, 0x17, 0x18, 0x19
DATA, END = 0x20, 0x21
OK, ERROR, ENTRIES, INFO, BEGIN, READY, DIGEST, SUBSCRIBED = (
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47)
EVENT, NOTIFY, RESYNC = 0x60, 0x61, 0x62

OP_NAMES = {v: k for k, v in dict(
    HELLO=HELLO, PING=PING, PONG=PONG, BYE=BYE, LIST=LIST, STAT=STAT,
    DELETE=DELETE, GET=GET, PUT=PUT, HASH=HASH, SUBSCRIBE=SUBSCRIBE,
    UNSUBSCRIBE=UNSUBSCRIBE, NOTICE=NOTICE, CANCEL=CANCEL, DATA=DATA, END=END,
    OK=OK, ERROR=ERROR, ENTRIES=ENTRIES, INFO=INFO, BEGIN=BEGIN, READY=READY,
    DIGEST=DIGEST, SUBSCRIBED=SUBSCRIBED, EVENT=EVENT, NOTIFY=NOTIFY,
    RESYNC=RESYNC).items()}

CAP_READ_ONLY, CAP_EVENTS, CAP_NOTICE = 1, 2, 4
PUT_REPLACE, PUT_NO_CLOBBER = 0, 1
EV_ADDED, EV_REPLACED, EV_REMOVED = 1, 2, 3

STATUS = dict(
    NOT_FOUND=1, EXISTS=2, BAD_NAME=3, TOO_LARGE=4, BUSY=5, IO=6, PROTOCOL=7,
    READ_ONLY=8, NO_SPACE=9, CHECKSUM=10, SIZE=11, UNKNOWN_OP=12, VERSION=13,
    CANCELED=14, RANGE=15, SHUTDOWN=16, TIMEOUT=17, BAD_REQUEST=18, LIMIT=19)
STATUS_NAMES = {v: k for k, v in STATUS.items()}
globals().update({"ST_" + k: v for k, v in STATUS.items()})

EVENT_OPS = (EVENT, NOTIFY, RESYNC)

# ---------------------------------------------------------------------------
# XXH3-64 (seed 0) through libxxhash


def _load_xxhash():
    names = [ctypes.util.find_library("xxhash"), "libxxhash.so.0",
             "libxxhash.so"]
    for n in names:
        if not n:
            continue
        try:
            lib = ctypes.CDLL(n)
        except OSError:
            continue
        lib.XXH3_64bits.restype = ctypes.c_uint64
        lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.XXH3_createState.restype = ctypes.c_void_p
        lib.XXH3_freeState.argtypes = [ctypes.c_void_p]
        lib.XXH3_64bits_reset.argtypes = [ctypes.c_void_p]
        lib.XXH3_64bits_update.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                           ctypes.c_size_t]
        lib.XXH3_64bits_digest.restype = ctypes.c_uint64
        lib.XXH3_64bits_digest.argtypes = [ctypes.c_void_p]
        return lib
    raise ImportError("fspclient needs libxxhash (XXH3-64)")


_xxh = _load_xxhash()


def xxh3_64(data):
    """XXH3-64 with seed 0 of a bytes-like object."""
    data = bytes(data)
    return _xxh.XXH3_64bits(data, len(data))


class Xxh3:
    """Streaming XXH3-64: update() pieces, then digest()."""

    def __init__(self):
        self._st = _xxh.XXH3_createState()
        if not self._st:
            raise MemoryError
        _xxh.XXH3_64bits_reset(self._st)

    def update(self, data):
        data = bytes(data)
        _xxh.XXH3_64bits_update(self._st, data, len(data))

    def digest(self):
        return _xxh.XXH3_64bits_digest(self._st)

    def __del__(self):
        st, self._st = getattr(self, "_st", None), None
        if st:
            _xxh.XXH3_freeState(st)


# ---------------------------------------------------------------------------
# Frames and payloads


def frame(op, rid, payload=b""):
    """One encoded frame."""
    return HDR.pack(MAGIC, VERSION, op, 0, rid, len(payload)) + payload


def hello_payload(max_payload=DEFAULT_PAYLOAD, agent="fspclient/1",
                  max_inflight=0, caps=0, version=VERSION):
    return struct.pack(">HHIIQ", version, 0, max_payload, max_inflight,
                       caps) + agent.encode()


def range_payload(offset, length, name):
    return struct.pack(">QQ", offset, length) + _b(name)


def put_payload(size, mode, name):
    return struct.pack(">QB", size, mode) + _b(name)


def _b(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def parse_entries(payload):
    """ENTRIES payload -> list of (name, size, mtime_ns)."""
    (count,) = struct.unpack_from(">I", payload, 0)
    pos, out = 4, []
    for _ in range(count):
        size, mtime, nlen = struct.unpack_from(">QqH", payload, pos)
        pos += 18
        out.append((payload[pos:pos + nlen].decode(), size, mtime))
        pos += nlen
    if pos != len(payload):
        raise ProtocolError("ENTRIES does not add up")
    return out


def parse_event(op, payload):
    """An EVENT, NOTIFY or RESYNC payload -> Event."""
    if op == EVENT:
        seq, kind, size, mtime = struct.unpack_from(">QBQq", payload, 0)
        return Event("EVENT", seq=seq, kind=kind, size=size, mtime_ns=mtime,
                     name=payload[25:].decode())
    if op == NOTIFY:
        return Event("NOTIFY", text=payload.decode())
    epoch, seq = struct.unpack(">QQ", payload)
    return Event("RESYNC", epoch=epoch, seq=seq)


class Event:
    """Something the server pushed: type is "EVENT", "NOTIFY" or "RESYNC"."""

    def __init__(self, type, **kw):
        self.type = type
        self.seq = self.kind = self.size = self.mtime_ns = self.epoch = None
        self.name = self.text = None
        self.__dict__.update(kw)

    def __repr__(self):
        fields = ", ".join("%s=%r" % (k, v) for k, v in self.__dict__.items()
                           if v is not None and k != "type")
        return "Event(%s, %s)" % (self.type, fields)


class ProtocolError(Exception):
    """The server broke the protocol, or the connection ended."""


class FspError(Exception):
    """The server answered ERROR. .status is the code, .name its name."""

    def __init__(self, rid, status, message):
        self.id = rid
        self.status = status
        self.name = STATUS_NAMES.get(status, str(status))
        self.message = message
        super().__init__("%s (%d): %s" % (self.name, status, message))


# ---------------------------------------------------------------------------
# The client


class Client:
    """One connection to an fsproto server."""

    def __init__(self, host="127.0.0.1", port=7878, timeout=30.0,
                 agent="fspclient/1", max_payload=DEFAULT_PAYLOAD,
                 hello=True, sock=None):
        self.sock = sock or socket.create_connection((host, port),
                                                     timeout=timeout)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.max_payload = max_payload
        self.agent = agent
        self.server = None      # the server's HELLO, as a dict
        self.peer_max = MIN_PAYLOAD
        self.events = collections.deque()
        self._held = collections.defaultdict(collections.deque)
        self._buf = bytearray()
        self._next_id = 1
        if hello:
            self.hello()

    # --- plumbing --------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def new_id(self):
        rid = self._next_id
        self._next_id = rid + 1 if rid < 0xFFFFFFFF else 1
        return rid

    def send(self, op, rid, payload=b""):
        """Sends one frame."""
        self.sock.sendall(frame(op, rid, payload))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ProtocolError("connection closed by the server")
            self._buf += chunk

    def read_frame(self):
        """Reads the next frame off the socket: (op, id, payload bytes)."""
        self._fill(HDR_LEN)
        magic, ver, op, flags, rid, length = HDR.unpack_from(self._buf, 0)
        if magic != MAGIC or ver != VERSION or flags != 0:
            raise ProtocolError("bad frame header %r" % bytes(self._buf[:12]))
        if length > self.max_payload:
            raise ProtocolError("payload of %d bytes over our limit" % length)
        self._fill(HDR_LEN + length)
        payload = bytes(self._buf[HDR_LEN:HDR_LEN + length])
        del self._buf[:HDR_LEN + length]
        return op, rid, payload

    def next_frame(self, rid):
        """The next frame for request rid (events are queued meanwhile)."""
        if self._held[rid]:
            return self._held[rid].popleft()
        while True:
            op, fid, payload = self.read_frame()
            if fid == 0 and op in EVENT_OPS:
                self.events.append(parse_event(op, payload))
                continue
            if fid == rid:
                return op, fid, payload
            self._held[fid].append((op, fid, payload))

    def next_event(self):
        """The next pushed Event (blocks up to the socket timeout)."""
        while not self.events:
            op, fid, payload = self.read_frame()
            if fid == 0 and op in EVENT_OPS:
                self.events.append(parse_event(op, payload))
            else:
                self._held[fid].append((op, fid, payload))
        return self.events.popleft()

    def request(self, op, payload=b"", rid=None):
        """Sends a request; returns its id."""
        if rid is None:
            rid = self.new_id()
        self.send(op, rid, payload)
        return rid

    @staticmethod
    def check(op, rid, payload):
        """Raises FspError for an ERROR frame; else returns the frame."""
        if op == ERROR:
            (status,) = struct.unpack_from(">H", payload, 0)
            raise FspError(rid, status, payload[2:].decode(errors="replace"))
        return op, rid, payload

    def wait(self, rid, final):
        """Collects the frames of request rid up to its final frame (of
        opcode final); returns them all. Raises FspError on ERROR."""
        frames = []
        while True:
            op, fid, payload = self.check(*self.next_frame(rid))
            frames.append((op, payload))
            if op == final:
                return frames

    def call(self, op, payload, final):
        """Sends a request and waits for its final frame's payload."""
        return self.wait(self.request(op, payload), final)[-1][1]

    # --- requests ----------------------------------------------------------

    def hello(self, version=VERSION):
        self.send(HELLO, 0, hello_payload(self.max_payload, self.agent,
                                          version=version))
        op, _, payload = self.check(*self.next_frame(0))
        if op != HELLO:
            raise ProtocolError("expected HELLO, got %s" % OP_NAMES.get(op, op))
        ver, _, maxp, inflight, caps = struct.unpack_from(">HHIIQ", payload, 0)
        self.server = dict(version=ver, max_payload=maxp, max_inflight=inflight,
                           caps=caps, agent=payload[20:].decode())
        self.peer_max = maxp
        return self.server

    def ping(self, data=b""):
        return self.call(PING, data, PONG)

    def list(self):
        """{name: (size, mtime_ns)} of the server's files."""
        out = {}
        for op, payload in self.wait(self.request(LIST), OK):
            if op == ENTRIES:
                for name, size, mtime in parse_entries(payload):
                    out[name] = (size, mtime)
        return out

    def stat(self, name):
        """(size, mtime_ns) of a file."""
        return struct.unpack(">Qq", self.call(STAT, _b(name), INFO))

    def delete(self, name):
        self.call(DELETE, _b(name), OK)

    def hash(self, name, offset=0, length=TO_END):
        """(offset, length, hash) of a range, as DIGEST gives it."""
        return struct.unpack(">QQQ", self.call(
            HASH, range_payload(offset, length, name), DIGEST))

    def get(self, name, offset=0, length=TO_END, sink=None):
        """Downloads a range; returns the bytes (or writes them to sink's
        write() and returns the BEGIN fields). Verifies END's size and hash,
        raising ProtocolError on a mismatch."""
        rid = self.request(GET, range_payload(offset, length, name))
        return self.read_get(rid, sink)

    def read_get(self, rid, sink=None):
        op, _, payload = self.check(*self.next_frame(rid))
        if op != BEGIN:
            raise ProtocolError("expected BEGIN, got %s" % OP_NAMES.get(op, op))
        begin = dict(zip(("file_size", "mtime_ns", "offset", "length"),
                         struct.unpack(">QqQQ", payload)))
        h, got, parts = Xxh3(), 0, []
        while True:
            op, _, payload = self.check(*self.next_frame(rid))
            if op == DATA:
                h.update(payload)
                got += len(payload)
                if sink is not None:
                    sink.write(payload)
                else:
                    parts.append(payload)
            elif op == END:
                size, digest = struct.unpack(">QQ", payload)
                if size != got or size != begin["length"] or digest != h.digest():
                    raise ProtocolError("GET: END does not match the data")
                return begin if sink is not None else b"".join(parts)
            else:
                raise ProtocolError("unexpected %s in GET" %
                                    OP_NAMES.get(op, op))

    def put(self, name, data, mode=PUT_REPLACE, chunk=None, size=None,
            hash_value=None):
        """Uploads data (bytes, or a file object read in chunks when size is
        given); returns (size, mtime_ns) of the stored file. hash_value
        overrides the checksum sent in END (to test the server)."""
        if size is None:
            data = _b(data)
            size = len(data)
        rid = self.request(PUT, put_payload(size, mode, name))
        self.wait(rid, READY)
        chunk = chunk or min(self.peer_max, 256 * 1024)
        h, sent = Xxh3(), 0
        while sent < size:
            if isinstance(data, (bytes, bytearray, memoryview)):
                piece = data[sent:sent + chunk]
            else:
                piece = data.read(min(chunk, size - sent))
                if not piece:
                    raise ValueError("the source ended early")
            h.update(piece)
            self.send(DATA, rid, bytes(piece))
            sent += len(piece)
        digest = h.digest() if hash_value is None else hash_value
        self.send(END, rid, struct.pack(">QQ", size, digest))
        return struct.unpack(">Qq", self.wait(rid, INFO)[-1][1])

    def subscribe(self, epoch=0, since=0):
        """(epoch, seq) from SUBSCRIBED."""
        return struct.unpack(">QQ", self.call(
            SUBSCRIBE, struct.pack(">QQ", epoch, since), SUBSCRIBED))

    def unsubscribe(self):
        self.call(UNSUBSCRIBE, b"", OK)

    def notice(self, text):
        self.call(NOTICE, _b(text), OK)

    def cancel(self, rid):
        self.send(CANCEL, rid)

    def bye(self):
        """Orderly close: BYE, wait for BYE back, close the socket."""
        rid = self.new_id()
        self.send(BYE, rid, struct.pack(">H", 0))
        while True:
            op, fid, payload = self.read_frame()
            if op == BYE and fid == rid:
                break
        self.close()
