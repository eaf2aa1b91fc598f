"""Integration tests of authentication (protocol.md section 11): a real fsd
with a users file on 127.0.0.1:0, driven over TCP by fspclient, signing with
real Ed25519 keys (python3-cryptography). Usage: test_auth.py --fsd PATH."""

import base64
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import \
    Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

CHALLENGE, AUTH = 0x05, 0x06
UNAUTHENTICATED, FORBIDDEN = 20, 21
CAP_AUTH = 1 << 3
CONTEXT = b"fsproto-v2-auth-ed25519\0"


def ssh_pub(key):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    blob = (struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) +
            raw)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def transcript(snonce, cnonce, user, binding=b""):
    u = user.encode()
    return (CONTEXT + snonce + cnonce + bytes([len(u)]) + u +
            bytes([len(binding)]) + binding)


def auth_payload(key, user, snonce, cnonce=None):
    cnonce = cnonce or os.urandom(32)
    sig = key.sign(transcript(snonce, cnonce, user))
    return cnonce + sig + user.encode()


class Conn(fc.Client):
    """A client that stops after HELLO to look at the challenge."""

    def __init__(self, port, **kw):
        super().__init__("127.0.0.1", port, timeout=20, hello=False, **kw)
        self.snonce = None

    def hello2(self, version=2):
        server = self.hello(version=version)
        if server["caps"] & CAP_AUTH:
            op, rid, payload = self.read_frame()
            assert op == CHALLENGE and rid == 0, (op, rid)
            self.snonce = payload
        return server

    def auth(self, key, user, snonce=None):
        self.send(AUTH, 0, auth_payload(key, user, snonce or self.snonce))

    def expect_error(self, rid, status):
        op, fid, payload = self.read_frame()
        if op != fc.ERROR:
            raise AssertionError("expected ERROR, got %s" %
                                 fc.OP_NAMES.get(op, op))
        (st,) = struct.unpack_from(">H", payload, 0)
        if (fid, st) != (rid, status):
            raise AssertionError("ERROR %d on %d: %s" % (st, fid, payload[2:]))
        return payload[2:].decode()

    def expect_closed(self):
        try:
            while True:
                op, rid, _ = self.read_frame()
                raise AssertionError("frame %s after the refusal" %
                                     fc.OP_NAMES.get(op, op))
        except (fc.ProtocolError, ConnectionResetError):
            pass


class AuthServer(unittest.TestCase):
    """One fsd with users alice (all rights), bob (read), carol (write)."""

    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fsd-auth-")
        cls.keys = {n: Ed25519PrivateKey.generate()
                    for n in ("alice", "bob", "carol", "mallory")}
        cls.users = os.path.join(cls.tmp, "users")
        cls.write_users({"alice": "read,write,delete,notice", "bob": "read",
                         "carol": "write"})
        cls.alog = os.path.join(cls.tmp, "access.log")
        cls.srv = fsdrun.Fsd("--users", cls.users, "--access-log", cls.alog,
                             *cls.extra).start()

    @classmethod
    def write_users(cls, rights):
        text = "# test users\n" + "".join(
            "%s %s %s %s@test\n" % (n, r, ssh_pub(cls.keys[n]), n)
            for n, r in rights.items())
        tmp = cls.users + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, cls.users)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = "\n".join(cls.srv.log)
        cls.srv.cleanup()
        subprocess.run(["rm", "-rf", cls.tmp])
        if rc != 0 or cls.srv.sanitizer_report():
            raise AssertionError("fsd exited with %r:\n%s" % (rc, log))

    def conn(self):
        c = Conn(self.srv.port)
        self.addCleanup(c.close)
        return c

    def conn_from(self, ip):
        """A connection from another loopback address (another client)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((ip, 0))
        except OSError:
            s.close()
            self.skipTest("cannot bind %s" % ip)
        s.connect(("127.0.0.1", self.srv.port))
        c = Conn(self.srv.port, sock=s)
        self.addCleanup(c.close)
        return c

    def login(self, user):
        c = self.conn()
        c.hello2()
        c.auth(self.keys[user], user)
        op, rid, _ = c.read_frame()
        self.assertEqual((op, rid), (fc.OK, 0))
        return c


class BeforeAuthTest(AuthServer):
    def test_hello_announces_auth_and_challenges(self):
        c = self.conn()
        server = c.hello2()
        self.assertEqual(server["version"], 2)
        self.assertTrue(server["caps"] & CAP_AUTH)
        self.assertEqual(len(c.snonce), 32)
        d = self.conn()
        d.hello2()
        self.assertNotEqual(c.snonce, d.snonce)

    def test_each_opcode_before_auth_is_refused_and_closes(self):
        frames = [
            (fc.LIST, b""), (fc.STAT, b"a.txt"), (fc.DELETE, b"a.txt"),
            (fc.GET, fc.range_payload(0, fc.TO_END, "a.txt")),
            (fc.PUT, fc.put_payload(1, 0, "a.txt")),
            (fc.HASH, fc.range_payload(0, fc.TO_END, "a.txt")),
            (fc.SUBSCRIBE, struct.pack(">QQ", 0, 0)), (fc.UNSUBSCRIBE, b""),
            (fc.NOTICE, b"hi"), (fc.CANCEL, b""), (fc.DATA, b"x"),
            (fc.END, struct.pack(">QQ", 0, 0)), (0x7F, b"?"),
        ]
        for op, payload in frames:
            with self.subTest(op=fc.OP_NAMES.get(op, op)):
                c = self.conn()
                c.hello2()
                c.send(op, 9, payload)
                msg = c.expect_error(9, UNAUTHENTICATED)
                self.assertIn("authentication required", msg)
                c.expect_closed()

    def test_pipelined_hello_get_returns_no_byte(self):
        with open(self.srv.path("secret.txt"), "wb") as f:
            f.write(b"TOP SECRET CONTENT")
        c = self.conn()
        c.send_raw(fc.frame(fc.HELLO, 0, fc.hello_payload(version=2)) +
                   fc.frame(fc.GET, 1,
                            fc.range_payload(0, fc.TO_END, "secret.txt")))
        seen = b""
        try:
            while True:
                op, rid, payload = c.read_frame()
                seen += payload
                self.assertNotIn(op, (fc.BEGIN, fc.DATA, fc.END))
        except fc.ProtocolError:
            pass
        self.assertNotIn(b"SECRET", seen)

    def test_old_client_is_told_why(self):
        c = self.conn()
        c.send(fc.HELLO, 0, fc.hello_payload(version=1))
        msg = c.expect_error(0, 13)  # VERSION
        self.assertIn("authentication required", msg)
        c.expect_closed()

    def test_preauth_frame_over_1k(self):
        c = self.conn()
        c.hello2()
        c.send(AUTH, 0, bytes(1025))
        c.expect_error(0, 4)  # TOO_LARGE
        c.expect_closed()

    def test_ping_before_auth(self):
        c = self.conn()
        c.hello2()
        self.assertEqual(c.ping(b"p"), b"p")


class RefusedTest(AuthServer):
    def refused(self, c, user="alice"):
        # One message for every failure: it never tells an unknown user
        # from a wrong key or a bad signature.
        msg = c.expect_error(0, UNAUTHENTICATED)
        self.assertEqual(msg, "authentication failed for user %s" % user)
        c.expect_closed()

    def test_bad_signature(self):
        c = self.conn()
        c.hello2()
        p = bytearray(auth_payload(self.keys["alice"], "alice", c.snonce))
        p[40] ^= 1
        c.send(AUTH, 0, bytes(p))
        self.refused(c)

    def test_unknown_user(self):
        c = self.conn()
        c.hello2()
        c.auth(self.keys["mallory"], "mallory")
        self.refused(c, "mallory")

    def test_another_users_key(self):
        c = self.conn()
        c.hello2()
        c.auth(self.keys["bob"], "alice")
        self.refused(c)

    def test_replayed_nonce(self):
        a = self.conn()
        a.hello2()
        old = a.snonce
        a.auth(self.keys["alice"], "alice")
        self.assertEqual(a.read_frame()[:2], (fc.OK, 0))
        # The same signed answer, captured and sent on a new connection.
        b = self.conn()
        b.hello2()
        b.auth(self.keys["alice"], "alice", snonce=old)
        self.refused(b)

    def test_one_attempt(self):
        c = self.conn()
        c.hello2()
        c.send_raw(fc.frame(AUTH, 0, auth_payload(self.keys["bob"], "alice",
                                                  c.snonce)) +
                   fc.frame(AUTH, 0, auth_payload(self.keys["alice"],
                                                  "alice", c.snonce)))
        self.refused(c)


class DeadlineTest(AuthServer):
    extra = ("--auth-timeout", "1")

    def test_auth_after_the_deadline(self):
        c = self.conn()
        c.hello2()
        # Wait for the server's answer: it comes once the deadline passed.
        c.expect_error(0, 17)  # TIMEOUT
        c.expect_closed()


class RightsTest(AuthServer):
    def test_read_only_user_cannot_change_anything(self):
        path = self.srv.path("keep.txt")
        with open(path, "wb") as f:
            f.write(b"original")
        c = self.login("bob")
        for call in (lambda: c.put("keep.txt", b"changed"),
                     lambda: c.delete("keep.txt"),
                     lambda: c.notice("hi")):
            with self.assertRaises(fc.FspError) as e:
                call()
            self.assertEqual(e.exception.status, FORBIDDEN)
            self.assertIn("user bob lacks the", e.exception.message)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"original")
        self.assertEqual(c.get("keep.txt"), b"original")

    def test_user_without_read_gets_no_events(self):
        w = self.login("carol")
        with self.assertRaises(fc.FspError) as e:
            w.subscribe()
        self.assertEqual(e.exception.status, FORBIDDEN)
        r = self.login("bob")
        r.subscribe()
        a = self.login("alice")
        a.put("ev.txt", b"x")
        self.assertEqual(r.next_event().name, "ev.txt")
        # carol's connection got nothing: her next answer is her PING's.
        self.assertEqual(w.ping(b"q"), b"q")
        self.assertEqual(len(w.events), 0)

    def test_access_log_lines(self):
        a = self.login("alice")
        a.put("logged.txt", b"12345")
        a.stat("logged.txt")
        b = self.login("bob")
        with self.assertRaises(fc.FspError):
            b.delete("logged.txt")
        a.ping()  # the log is written in the background: give it a turn
        text = fsdrun.wait_until(
            lambda: "FORBIDDEN" in open(self.alog).read() and
            open(self.alog).read(), 10)
        self.assertRegex(text, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                               r"127\.0\.0\.1:\d+ alice PUT \"logged.txt\" 5 "
                               r"OK \d+\.\d{3}ms\n")
        self.assertRegex(text, r" bob DELETE \"logged.txt\" 0 FORBIDDEN ")


class ReloadTest(AuthServer):
    def test_sighup_removes_and_shrinks(self):
        a = self.login("alice")
        b = self.login("bob")
        a.subscribe()
        self.write_users({"alice": "read", "carol": "write"})
        self.srv.proc.send_signal(signal.SIGHUP)
        msg = b.expect_error(0, UNAUTHENTICATED)
        self.assertIn("user bob was removed", msg)
        b.expect_closed()
        with self.assertRaises(fc.FspError) as e:
            a.put("after.txt", b"x")
        self.assertEqual(e.exception.status, FORBIDDEN)
        self.assertEqual(a.ping(b"still"), b"still")
        # A new connection for bob is refused.
        c = self.conn()
        c.hello2()
        c.auth(self.keys["bob"], "bob")
        c.expect_error(0, UNAUTHENTICATED)
        self.write_users({"alice": "read,write,delete,notice", "bob": "read",
                          "carol": "write"})
        self.srv.proc.send_signal(signal.SIGHUP)
        fsdrun.wait_until(lambda: any("users file" in l and "reloaded" in l
                                      for l in self.srv.log[-5:]), 10)


class FailureDelayTest(AuthServer):
    def test_delay_grows_while_others_are_served(self):
        honest = self.login("alice")
        honest.put("f.txt", b"data")
        delays = []
        for i in range(4):
            c = self.conn()
            c.hello2()
            c.auth(self.keys["mallory"], "mallory")
            # While the bad attempt is held, the honest user is served:
            # its answer comes before the refusal does.
            self.assertEqual(honest.stat("f.txt")[0], 4)
            c.expect_error(0, UNAUTHENTICATED)
        held = [int(m.group(1)) for m in
                (re.search(r"holding AUTH from 127\.0\.0\.1:\d+ for (\d+) ms", l)
                 for l in self.srv.log) if m]
        self.assertEqual(held[:3], [50, 100, 200])


class MaxUnauthTest(AuthServer):
    extra = ("--max-unauth", "4")

    def test_unauthenticated_connections_are_capped(self):
        # One address may hold half of the 4 places.
        waiting = [self.conn(), self.conn()]
        for c in waiting:
            c.hello2()
        extra = self.conn()
        msg = extra.expect_error(0, 19)  # LIMIT
        self.assertIn("from this address waiting to authenticate", msg)
        extra.expect_closed()
        # One of them authenticates: room for another.
        waiting[0].auth(self.keys["alice"], "alice")
        self.assertEqual(waiting[0].read_frame()[:2], (fc.OK, 0))
        again = self.conn()
        again.hello2()
        self.assertEqual(again.ping(b"in"), b"in")


class MaxUnauthTotalTest(AuthServer):
    extra = ("--max-unauth", "4")

    def test_unauthenticated_connections_are_capped_in_all(self):
        # Two addresses hold all 4 places: a third address is refused too.
        waiting = [self.conn_from(ip) for ip in
                   ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3")]
        for c in waiting:
            c.hello2()
        extra = self.conn_from("127.0.0.4")
        msg = extra.expect_error(0, 19)  # LIMIT
        self.assertIn("too many connections waiting to authenticate", msg)
        extra.expect_closed()
        # One of them authenticates: room for another address.
        waiting[0].auth(self.keys["alice"], "alice")
        self.assertEqual(waiting[0].read_frame()[:2], (fc.OK, 0))
        again = self.conn_from("127.0.0.4")
        again.hello2()
        self.assertEqual(again.ping(b"in"), b"in")


class MaxUnauthDefaultTest(AuthServer):
    def test_default_cap_is_64_and_32_per_address(self):
        def waiting(ip, n):
            cs = [self.conn_from(ip) for _ in range(n)]
            for c in cs:
                c.hello2()
            return cs

        def refused(ip, why):
            c = self.conn_from(ip)
            self.assertIn(why, c.expect_error(0, 19))  # LIMIT
            c.expect_closed()

        waiting("127.0.0.5", 32)
        refused("127.0.0.5", "from this address")
        waiting("127.0.0.6", 32)
        refused("127.0.0.7", "too many connections waiting")


class FileChecksTest(unittest.TestCase):
    def run_fsd(self, *args):
        return subprocess.run([fsdrun.FSD, "--root",
                               tempfile.mkdtemp(prefix="fsd-auth-root-"),
                               "--listen", "127.0.0.1:0"] + list(args),
                              capture_output=True, timeout=20)

    def test_symlink_and_writable_users_file_refused(self):
        d = tempfile.mkdtemp(prefix="fsd-auth-")
        real = os.path.join(d, "users")
        with open(real, "w") as f:
            f.write("")
        os.chmod(real, 0o600)
        link = os.path.join(d, "link")
        os.symlink(real, link)
        p = self.run_fsd("--users", link)
        self.assertEqual(p.returncode, 2)
        self.assertIn("symbolic link", p.stderr.decode())
        os.chmod(real, 0o666)
        p = self.run_fsd("--users", real)
        self.assertEqual(p.returncode, 2)
        self.assertIn("chmod go-w", p.stderr.decode())
        subprocess.run(["rm", "-rf", d])

    def test_malformed_users_file_names_the_line(self):
        d = tempfile.mkdtemp(prefix="fsd-auth-")
        path = os.path.join(d, "users")
        with open(path, "w") as f:
            f.write("# users\nalice admin ssh-ed25519 AAAA\n")
        os.chmod(path, 0o600)
        p = self.run_fsd("--users", path)
        self.assertEqual(p.returncode, 2)
        self.assertIn("line 2", p.stderr.decode())
        subprocess.run(["rm", "-rf", d])

    def test_non_loopback_needs_users_or_anonymous(self):
        p = self.run_fsd("--listen", "0.0.0.0:0")
        self.assertEqual(p.returncode, 2)
        err = p.stderr.decode()
        self.assertIn("--users", err)
        self.assertIn("--anonymous", err)
        self.assertEqual(len(err.strip().splitlines()), 1)


class AnonymousReadTest(unittest.TestCase):
    def plain(self):
        """A listener beyond loopback speaks TLS; this test's client speaks
        plaintext, which --allow-plaintext also serves."""
        d = tempfile.mkdtemp(prefix="fsd-anon-state-")
        self.addCleanup(subprocess.run, ["rm", "-rf", d])
        return ("--allow-plaintext", "--state-dir", d)

    def test_anonymous_read_is_read_only(self):
        with fsdrun.Fsd("--anonymous", "read", *self.plain(),
                        listen="0.0.0.0:0") as srv:
            with open(srv.path("pub.txt"), "wb") as f:
                f.write(b"public")
            c = fc.Client("127.0.0.1", srv.port)
            self.assertTrue(c.server["caps"] & fc.CAP_READ_ONLY)
            self.assertFalse(c.server["caps"] & CAP_AUTH)
            self.assertEqual(c.get("pub.txt"), b"public")
            with self.assertRaises(fc.FspError) as e:
                c.put("new.txt", b"x")
            self.assertEqual(e.exception.status, fc.ST_READ_ONLY)
            with self.assertRaises(fc.FspError) as e:
                c.delete("pub.txt")
            self.assertEqual(e.exception.status, fc.ST_READ_ONLY)
            with self.assertRaises(fc.FspError) as e:
                c.notice("spam")
            self.assertEqual(e.exception.status, FORBIDDEN)
            c.close()

    def test_anonymous_rw(self):
        with fsdrun.Fsd("--anonymous", "rw", *self.plain(),
                        listen="0.0.0.0:0") as srv:
            c = fc.Client("127.0.0.1", srv.port)
            c.put("new.txt", b"x")
            self.assertEqual(c.get("new.txt"), b"x")
            c.close()


def main():
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--fsd":
        fsdrun.FSD = os.path.abspath(args[1])
        args = args[2:]
    if not fsdrun.FSD:
        sys.exit("usage: test_auth.py --fsd PATH [unittest args]")
    socket.setdefaulttimeout(30)
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)


if __name__ == "__main__":
    main()
