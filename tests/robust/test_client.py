#!/usr/bin/env python3
"""The client against a hostile server: fsc talks to a fake server (a thread
in this script) that lies. fsc must fail with an error status, never crash,
never keep a download that does not match END, never write outside its
folder, and never pass control characters from the server to the terminal."""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

from fsptest import (CONFIG, OP, ST, Conn, frame, main, p_end, slow_factor,
                     xxh3)

SANITIZER_MARKS = ("Sanitizer", "runtime error:")


def server_hello():
    return frame(OP["HELLO"], 0, struct.pack(">HHIIQ", 1, 0, 1 << 20, 64, 6) +
                 b"fake/1")


class FakeServer:
    """Accepts connections and runs handler(conn) on each, in a thread."""

    def __init__(self, handler):
        self.handler = handler
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = self.lsock.getsockname()
        self.requests = []
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            c = Conn.__new__(Conn)
            c.sock, c.buf, c.timeout = s, bytearray(), 10.0
            try:
                self.handler(self, c)
            except Exception as e:  # the client went away, mostly
                self.errors.append(repr(e))
            finally:
                c.close()

    def close(self):
        self.lsock.close()


def handshake(srv, c):
    f = c.recv_frame()
    assert f.op == OP["HELLO"], f
    c.send(server_hello())


def next_request(srv, c):
    f = c.recv_frame()
    srv.requests.append(f)
    return f


class ClientCase(unittest.TestCase):

    def setUp(self):
        if not CONFIG.get("fsc"):
            self.skipTest("fsc not given")
        self.tmp = tempfile.mkdtemp(prefix="fsc-robust-")
        self.cwd = os.path.join(self.tmp, "work")
        os.mkdir(self.cwd)
        self.srv = None

    def tearDown(self):
        if self.srv:
            self.srv.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fsc(self, handler, *args):
        self.srv = FakeServer(handler)
        cmd = [CONFIG["fsc"], "-q", "-s", "%s:%d" % self.srv.addr] + list(args)
        p = subprocess.run(cmd, cwd=self.cwd, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=20 * slow_factor())
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        self.assertGreaterEqual(p.returncode, 0,
                                "fsc killed by signal %d:\n%s" %
                                (-p.returncode, err))
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, err)
        return p.returncode, out, err, p

    def assert_nothing_written(self):
        self.assertEqual(os.listdir(self.cwd), [])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["work"])

    # ---- handlers

    def test_client_bad_name_in_list(self):
        def h(srv, c):
            handshake(srv, c)
            f = next_request(srv, c)
            body = struct.pack(">I", 2)
            for name in (b"good.txt", b"../evil"):
                body += struct.pack(">QqH", 1, 0, len(name)) + name
            c.send(frame(OP["ENTRIES"], f.id, body) + frame(OP["OK"], f.id))
            c.recv_frame(timeout=5)

        rc, out, err, _ = self.fsc(h, "ls")
        self.assertIn(rc, (1, 3), err)
        self.assertNotIn("../evil", out)

    def serve_get(self, data, claimed_size=None, hash_value=None,
                  cut_after=None, begin_len=None):
        def h(srv, c):
            handshake(srv, c)
            while True:
                f = next_request(srv, c)
                if f.op == OP["GET"]:
                    break
                if f.op == OP["HASH"]:
                    c.send(frame(OP["ERROR"], f.id, struct.pack(
                        ">H", ST["NOT_FOUND"]) + b"no"))
                    continue
                c.send(frame(OP["ERROR"], f.id, struct.pack(
                    ">H", ST["NOT_FOUND"])))
            size = len(data) if claimed_size is None else claimed_size
            length = size if begin_len is None else begin_len
            c.send(frame(OP["BEGIN"], f.id, struct.pack(">QqQQ", size, 0, 0,
                                                          length)))
            if cut_after is not None:
                c.send(frame(OP["DATA"], f.id, data[:cut_after]))
                return  # closes the connection mid-download
            c.send(frame(OP["DATA"], f.id, data))
            c.send(frame(OP["END"], f.id, p_end(
                len(data), xxh3(data) if hash_value is None else hash_value)))
            try:
                while True:
                    c.recv_frame(timeout=5)
            except Exception:
                pass
        return h

    def test_client_get_more_data_than_begun(self):
        rc, _, err, _ = self.fsc(self.serve_get(b"x" * 20, claimed_size=10),
                                 "get", "a.txt")
        self.assertNotEqual(rc, 0, err)
        self.assert_nothing_written()

    def test_client_get_bad_hash(self):
        rc, _, err, _ = self.fsc(self.serve_get(b"hello world",
                                                hash_value=12345),
                                 "get", "a.txt")
        self.assertEqual(rc, 1, err)
        self.assert_nothing_written()

    def test_client_get_connection_lost(self):
        rc, _, err, _ = self.fsc(self.serve_get(b"y" * 100000, cut_after=5000),
                                 "get", "a.txt")
        self.assertEqual(rc, 3, err)
        self.assertNotIn("a.txt", os.listdir(self.cwd))
        self.assertEqual(sorted(os.listdir(self.tmp)), ["work"])

    def test_client_get_good_download_works(self):
        # The fake server is right here: the checks above are not fsc
        # refusing everything.
        rc, _, err, _ = self.fsc(self.serve_get(b"hello world"), "get",
                                 "a.txt")
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.cwd, "a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"hello world")

    def test_client_refuses_path_names(self):
        # A server that would serve anything: fsc itself must not write
        # outside its folder for a name with a path in it.
        for name in ("../x", "/tmp/x", "a/b", ".."):
            rc, _, err, _ = self.fsc(self.serve_get(b"evil"), "get", name)
            self.assertNotEqual(rc, 0, (name, err))
            self.assert_nothing_written()
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "x")))

    def test_client_garbage_hello(self):
        for reply in (b"HTTP/1.1 400 Bad Request\r\n\r\n",
                      frame(OP["HELLO"], 0, b"", length=0xFFFFFFFF),
                      frame(OP["HELLO"], 0, b"\x00\x01"),
                      b"\xf5"):
            def h(srv, c, reply=reply):
                c.recv_frame()
                c.send(reply)
                try:
                    c.recv_frame(timeout=2)
                except Exception:
                    pass
            rc, _, err, _ = self.fsc(h, "ls")
            self.assertEqual(rc, 3, (reply[:20], err))

    def test_client_escapes_server_text(self):
        evil = b"no such file \x1b]0;owned\x07\x1b[2J\r"

        def h(srv, c):
            handshake(srv, c)
            f = next_request(srv, c)
            c.send(frame(OP["ERROR"], f.id, struct.pack(">H",
                                                        ST["NOT_FOUND"]) +
                         evil))
            try:
                c.recv_frame(timeout=5)
            except Exception:
                pass

        rc, out, err, p = self.fsc(h, "size", "a.txt")
        self.assertEqual(rc, 1)
        for raw in (b"\x1b", b"\x07", b"\r"):
            self.assertNotIn(raw, p.stderr + p.stdout)


if __name__ == "__main__":
    # --fsc PATH is this script's own option; the rest is fsptest's.
    if "--fsc" in sys.argv:
        i = sys.argv.index("--fsc")
        CONFIG["fsc"] = os.path.abspath(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    main()
