#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_session.c: each seed is 8 bytes
that steer the fake host, then a client's byte stream. Files are named by the
sha256 of their contents. Usage: make_session_corpus.py OUTDIR"""

import hashlib
import os
import struct
import sys

from fsptest import (OP, frame, p_end, p_hello, p_put, p_range, xxh3)

TO_END = 2**64 - 1


def hello():
    return frame(OP["HELLO"], 0, p_hello(agent=b"seed"))


def put(rid, name, data, mode=0):
    return (frame(OP["PUT"], rid, p_put(len(data), mode, name)) +
            frame(OP["DATA"], rid, data) +
            frame(OP["END"], rid, p_end(len(data), xxh3(data))))


SESSIONS = {
    "basic": hello() + frame(OP["STAT"], 1, b"a.txt") +
    frame(OP["LIST"], 2) + frame(OP["PING"], 3, b"abc") +
    frame(OP["BYE"], 4, b"\x00\x00"),
    "put-get": hello() + put(1, "a.txt", b"hello") +
    frame(OP["GET"], 2, p_range(0, TO_END, "a.txt")) +
    frame(OP["HASH"], 3, p_range(1, 3, "a.txt")) +
    frame(OP["DELETE"], 4, b"b"),
    "events": hello() + frame(OP["SUBSCRIBE"], 1, struct.pack(">QQ", 0, 0)) +
    frame(OP["NOTICE"], 2, "héllo".encode()) + put(3, "c", b"xyz") +
    frame(OP["SUBSCRIBE"], 4, struct.pack(">QQ", 0x1234, 1)) +
    frame(OP["UNSUBSCRIBE"], 5),
    "cancel": hello() + frame(OP["GET"], 1, p_range(0, TO_END, "a.txt")) +
    frame(OP["CANCEL"], 1) + frame(OP["PUT"], 2, p_put(10, 1, "n")) +
    frame(OP["CANCEL"], 2) + frame(OP["DATA"], 2, b"late"),
    "out-of-sequence": hello() + frame(OP["DATA"], 7, b"x") +
    frame(OP["END"], 7, p_end(1, 0)) + frame(OP["HELLO"], 0, p_hello()) +
    frame(OP["OK"], 8) + frame(0x7F, 9, b"?") +
    frame(OP["PUT"], 10, p_put(3, 0, "d")) + frame(OP["DATA"], 10, b"abcdef") +
    frame(OP["END"], 10, p_end(3, 0)) + frame(OP["STAT"], 10, b"d"),
    "bad-names": hello() + frame(OP["STAT"], 1, b"../x") +
    frame(OP["GET"], 2, p_range(0, 1, b"a/b")) +
    frame(OP["PUT"], 3, p_put(1, 0, b"\xff")) + frame(OP["DELETE"], 4, b".."),
    "framing": hello() + frame(OP["STAT"], 1, b"a.txt", flags=1),
    "too-big": hello() + frame(OP["DATA"], 1, b"", length=0xFFFFFFFF),
    "not-hello": frame(OP["LIST"], 1),
    "pipeline": hello() + b"".join(
        frame(OP["PUT"], i, p_put(2, 0, "p%d" % i)) for i in range(1, 70)) +
    b"".join(frame(OP["DATA"], i, b"ok") + frame(OP["END"], i,
                                                 p_end(2, xxh3(b"ok")))
             for i in range(1, 70)),
}

SEEDS = [bytes(8), b"\x01\x02\x03\x04\x05\x06\x07\x08",
         b"\xff\xff\xff\xff\xff\xff\xff\xff"]

# A server with a users file (fuzz_session.c: bit 0x40 of the first byte).
# Before authentication: the stream starts with HELLO version 2.
OP_AUTH = 0x06
AUTH_PRE = {
    "auth-pipelined": frame(OP["HELLO"], 0, p_hello(version=2)) +
    frame(OP["GET"], 1, p_range(0, TO_END, "a.txt")),
    "auth-bad-signature": frame(OP["HELLO"], 0, p_hello(version=2)) +
    frame(OP["PING"], 1, b"x") +
    frame(OP_AUTH, 0, bytes(range(96)) + b"alice") +
    frame(OP["LIST"], 2) + frame(OP["STAT"], 3, b"a.txt"),
    "auth-old-client": frame(OP["HELLO"], 0, p_hello(version=1)) +
    frame(OP["LIST"], 1),
    "auth-oversized": frame(OP["HELLO"], 0, p_hello(version=2)) +
    frame(OP_AUTH, 0, bytes(2000)),
}
AUTH_PRE_SEEDS = [b"\x40" + bytes(7), b"\x41\x02\x03\x84\x05\x06\x07\x08"]
# After the harness authenticated (second byte 0x40; rights in the third):
# requests that each right allows or forbids.
AUTH_POST = {
    "auth-rights": frame(OP["LIST"], 1) + put(2, "a.txt", b"new") +
    frame(OP["DELETE"], 3, b"b") + frame(OP["NOTICE"], 4, b"hi") +
    frame(OP["SUBSCRIBE"], 5, struct.pack(">QQ", 0, 0)) +
    frame(OP["GET"], 6, p_range(0, TO_END, "a.txt")) +
    frame(OP_AUTH, 0, bytes(96) + b"alice"),
}
AUTH_POST_SEEDS = [b"\x40\x40\x01" + bytes(5),
                   b"\x40\x40\x0f\x80" + bytes(4),
                   b"\xc0\x40\x0b\x00\x11\x22\x33\x44"]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for sessions, seeds in ((SESSIONS, SEEDS), (AUTH_PRE, AUTH_PRE_SEEDS),
                            (AUTH_POST, AUTH_POST_SEEDS)):
        for name, stream in sorted(sessions.items()):
            for seed in seeds:
                write(out, seed + stream)


def write(out, blob):
    h = hashlib.sha256(blob).hexdigest()
    with open(os.path.join(out, h), "wb") as f:
        f.write(blob)


if __name__ == "__main__":
    main()
