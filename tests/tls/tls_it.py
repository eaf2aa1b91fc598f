#!/usr/bin/env python3
"""Integration tests of TLS between a real fsd and real clients: fsc, the
openssl tool, and Python's ssl module (OpenSSL too) for hand-made faults.

Usage: tls_it.py FSD FSC MKCERT CASE

Each case starts its own fsd(s) with fresh state and key folders, and
its own fsc configuration folder (XDG_CONFIG_HOME), so that
known_servers starts empty. Exit status 0 = pass, 1 = fail.
"""

import os
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fsc"))
sys.path.insert(0, os.path.join(HERE, "..", "fsd"))
from fsc_it import Env, Failure, check, read_line, TIMEOUT  # noqa: E402
import fspclient  # noqa: E402

FP_RE = re.compile(r"TLS key fingerprint (SHA256:[A-Za-z0-9+/]{43})")


class Ctx:
    """Paths and programs shared by a case."""

    def __init__(self, fsd, fsc, mkcert):
        self.fsd, self.fsc, self.mkcert = fsd, fsc, mkcert
        self.tmp = tempfile.mkdtemp(prefix="tls-it-")
        self.cfg = os.path.join(self.tmp, "cfg")
        os.environ["XDG_CONFIG_HOME"] = self.cfg
        self.known = os.path.join(self.cfg, "fsc", "known_servers")
        self.envs = []

    def state(self, name="state"):
        return os.path.join(self.tmp, name)

    def env(self, *fsd_args, listen="127.0.0.1:0"):
        e = Env(self.fsd, self.fsc, listen, list(fsd_args))
        self.envs.append(e)
        return e

    def certs(self):
        d = os.path.join(self.tmp, "certs")
        if not os.path.isdir(d):
            os.mkdir(d)
            subprocess.run([self.mkcert, d], check=True)
        return d

    def close(self):
        for e in self.envs:
            e.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def log_text(env):
    with open(env.log, errors="replace") as f:
        return f.read()


def wait_log(env, pattern, timeout=TIMEOUT):
    """Waits for a line of fsd's log matching pattern; returns the match."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log_text(env))
        if m:
            return m
        time.sleep(0.05)
    raise Failure("fsd never logged %r:\n%s" % (pattern, log_text(env)))


def fingerprint(env):
    """The fingerprint fsd printed at start (the last one, after restarts)."""
    return FP_RE.findall(log_text(env))[-1]


def port_of(env):
    return int(env.server.rsplit(":", 1)[1])


def fsc_at(env, server, *args):
    """Runs fsc against another address than env.server."""
    return env.fsc("-s", server, *args, server=False)


def read_known(ctx):
    if not os.path.exists(ctx.known):
        return None
    with open(ctx.known) as f:
        return f.read()


# --- fsc: trust ---------------------------------------------------------------

def case_first_use_then_changed_key(ctx):
    """The first connection records the server's key and says so; a server
    with another key on the same address is refused with exit 3, the
    message names the line to remove, and nothing is transferred."""
    st1 = ctx.state("one")
    env = ctx.env("--tls", "--state-dir", st1)
    fp = fingerprint(env)
    data = os.urandom(100000)
    env.write("f", data)
    rc, _, err = env.fsc("--tls", "put", "f")
    check(rc == 0, "put over TLS", err)
    check("now trusted" in err and fp in err and ctx.known in err,
          "first use is announced on stderr", err)
    check(read_known(ctx) == "%s %s\n" % (env.server, fp), "line recorded",
          read_known(ctx))
    rc, _, err = env.fsc("--tls", "ls")
    check(rc == 0 and "trusted" not in err, "second connection is quiet", err)

    # The same address, another key.
    env.fsd_args = ["--tls", "--state-dir", ctx.state("two")]
    env.restart()
    fp2 = fingerprint(env)
    check(fp2 != fp, "a new key")
    os.unlink(env.path("f"))
    rc, _, err = env.fsc("--tls", "get", "f")
    check(rc == 3, "changed key: exit 3", rc, err)
    check("remove line 1 of %s" % ctx.known in err, "names the line", err)
    check(fp2 in err, "shows the new key", err)
    check(not os.path.exists(env.path("f")) and env.leftovers() == [],
          "nothing downloaded", os.listdir(env.work))
    env.write("g", b"new")
    rc, _, err = env.fsc("--tls", "put", "g")
    check(rc == 3 and env.on_server("g") is None, "nothing uploaded", err)
    check(read_known(ctx) == "%s %s\n" % (env.server, fp),
          "known_servers unchanged", read_known(ctx))
    # Once the line is gone, the new key is trusted on first use again.
    os.unlink(ctx.known)
    env.ok("--tls", "ls")


def case_pin(ctx):
    """--pin trusts that key only and records nothing; a malformed pin is a
    usage error."""
    st = ctx.state()
    p = subprocess.run([ctx.fsd, "--fingerprint", "--state-dir", st],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(p.returncode == 0, "fsd --fingerprint", p.stderr)
    fp = p.stdout.strip()
    check(FP_RE.search("TLS key fingerprint " + fp), "printed as ssh does", fp)
    env = ctx.env("--tls", "--state-dir", st)
    check(fingerprint(env) == fp, "same key at start", fp, fingerprint(env))
    env.ok("--pin", fp, "ls")
    check(read_known(ctx) is None, "--pin records nothing")
    other = "SHA256:" + "A" * 43
    rc, _, err = env.fsc("--pin", other, "ls")
    check(rc == 3 and "not the pinned" in err, "pin mismatch: exit 3", err)
    rc, _, err = env.fsc("--pin", "SHA256:nope", "ls")
    check(rc == 2 and "--pin" in err, "bad pin: usage error", rc, err)


def case_ca(ctx):
    """--ca verifies the chain and the host name or address: a certificate
    for another host, or an expired one, is refused with exit 3."""
    d = ctx.certs()
    ca = os.path.join(d, "ca.pem")

    def serve(name):
        return ctx.env("--tls-cert", os.path.join(d, name + ".pem"),
                       "--tls-key", os.path.join(d, name + ".key"))

    env = serve("ok")
    env.ok("--ca", ca, "ls")
    rc, _, err = fsc_at(env, "localhost:%d" % port_of(env), "--ca", ca, "ls")
    check(rc == 0, "by name", err)
    check(read_known(ctx) is None, "--ca records nothing")
    env = serve("host")
    rc, _, err = env.fsc("--ca", ca, "ls")
    check(rc == 3 and "mismatch" in err, "wrong host: exit 3", rc, err)
    env = serve("old")
    rc, _, err = env.fsc("--ca", ca, "ls")
    check(rc == 3 and "expired" in err, "expired: exit 3", rc, err)
    # Pinning fsd's own key is not what --ca trusts.
    env = ctx.env("--tls", "--state-dir", ctx.state())
    rc, _, err = env.fsc("--ca", ca, "ls")
    check(rc == 3, "self-signed under --ca: exit 3", rc, err)


# --- fsd: listeners and keys ----------------------------------------------------

def case_listeners(ctx):
    """Loopback stays plaintext with no set-up, and a TLS client gets no
    handshake there; a non-loopback listener is TLS by default (plaintext
    clients get an error saying so); --allow-plaintext serves both, and
    says so at start, but a plaintext connection is never upgraded."""
    st = ctx.state()
    env = ctx.env("--state-dir", st)
    check("fingerprint" not in log_text(env), "loopback: no TLS")
    check(not os.path.exists(st), "loopback: no key made")
    env.ok("ls")
    # A ClientHello is broken framing to a plaintext listener: a plaintext
    # ERROR on id 0, never a ServerHello, and the connection closes.
    hello, _, _, _ = client_hello()
    with fspclient.Client("127.0.0.1", port_of(env), hello=False) as c:
        c.send_raw(hello)
        op, rid, _ = c.read_frame()
        check(op == fspclient.ERROR and rid == 0, "ClientHello: ERROR id 0",
              op, rid)
        check(closed_by_server(c.sock), "ClientHello: closed")
    rc, _, err = env.fsc("--tls", "ls")
    check(rc != 0, "fsc --tls to a plaintext listener fails", rc, err)

    env = ctx.env("--state-dir", st, "--anonymous", "rw", listen="0.0.0.0:0")
    check(fingerprint(env), "0.0.0.0: TLS without being told")
    local = "127.0.0.1:%d" % port_of(env)
    rc, _, err = fsc_at(env, local, "ls")
    check(rc == 3 and "TLS is required" in err, "plaintext refused", rc, err)
    rc, _, err = fsc_at(env, local, "--tls", "ls")
    check(rc == 0, "TLS served", err)
    check("plaintext" not in log_text(env).split("listening")[0],
          "no plaintext warning")

    env = ctx.env("--state-dir", st, "--allow-plaintext", "--anonymous", "rw",
                  listen="0.0.0.0:0")
    check("plaintext connections are accepted" in log_text(env),
          "--allow-plaintext is warned about", log_text(env))
    local = "127.0.0.1:%d" % port_of(env)
    rc, _, err = fsc_at(env, local, "ls")
    check(rc == 0, "plaintext served", err)
    rc, _, err = fsc_at(env, local, "--tls", "ls")
    check(rc == 0, "TLS served", err)
    # The first byte decided plaintext: a TLS handshake after the HELLO is
    # not an upgrade but broken framing.
    with fspclient.Client("127.0.0.1", port_of(env)) as c:
        c.send_raw(hello)
        op, rid, _ = c.read_frame()
        check(op == fspclient.ERROR and rid == 0, "upgrade: ERROR id 0",
              op, rid)
        check(closed_by_server(c.sock), "upgrade: closed")


def case_key_mode(ctx):
    """A key file others can read is refused at start, with the fix; so is
    a certificate without its key."""
    st = ctx.state()
    subprocess.run([ctx.fsd, "--fingerprint", "--state-dir", st], check=True,
                   capture_output=True, timeout=TIMEOUT)
    check(os.stat(os.path.join(st, "key.pem")).st_mode & 0o777 == 0o600,
          "key made with mode 0600")
    check(os.stat(st).st_mode & 0o777 == 0o700, "state folder 0700")
    os.chmod(os.path.join(st, "key.pem"), 0o644)
    root = os.path.join(ctx.tmp, "root")
    os.mkdir(root)
    p = subprocess.run([ctx.fsd, "--tls", "--state-dir", st, "--root", root,
                        "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(p.returncode != 0 and "chmod 600" in p.stderr,
          "readable key refused", p.returncode, p.stderr)
    p = subprocess.run([ctx.fsd, "--tls-cert", "x.pem", "--root", root],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(p.returncode == 2 and "--tls-key" in p.stderr, "cert without key",
          p.returncode, p.stderr)


# --- fsd: bad peers ---------------------------------------------------------------

def client_hello(alpn=("fsproto/1",)):
    """A real TLS 1.3 ClientHello, and the objects to go on with it."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.minimum_version = ssl.TLSVersion.TLSv1_3
    if alpn:
        c.set_alpn_protocols(list(alpn))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = c.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read(), obj, inc, out


def tls_connect(port):
    """A finished handshake over a socket; returns (socket, sslobj, out)."""
    hello, obj, inc, out = client_hello()
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(hello)
    while True:
        data = s.recv(65536)
        check(data, "server closed during the handshake")
        inc.write(data)
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if pending:
                s.sendall(pending)
    s.sendall(out.read())
    check(obj.selected_alpn_protocol() == "fsproto/1", "ALPN agreed")
    check(obj.version() == "TLSv1.3", "TLS 1.3")
    return s, obj, out


def closed_by_server(s, timeout=TIMEOUT):
    """Reads until the server closes; True when it did in time."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, socket.timeout):
        return False


def case_bad_peers(ctx):
    """Garbage, truncated and abandoned handshakes, 1,000 half-finished ones
    at once, a TLS 1.2 client, a plaintext client on a TLS-only listener, a
    wrong ALPN and a client leaving mid-record: fsd refuses each with one
    log line and serves everyone else all along."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = ctx.env("--tls", "--state-dir", ctx.state(),
                  "--max-clients-per-ip", "2000")
    port = port_of(env)
    env.write("f", os.urandom(300000))
    env.ok("--tls", "put", "f")

    def served():
        env.ok("--tls", "ls")
        check(env.fsd.poll() is None, "fsd still runs")

    # A connection that never says anything: dropped after the deadline.
    silent = socket.create_connection(("127.0.0.1", port))

    # Garbage where the ClientHello should be.
    for junk in (b"\x16\x03\x01\x00\x10" + os.urandom(16),
                 b"\x16\x03\x01\xff\xff" + b"A" * 100,
                 b"\x16GET / HTTP/1.1\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(junk)
        check(closed_by_server(s), "garbage: closed")
        s.close()
    served()

    hello, _, _, _ = client_hello()
    held = []
    # A truncated ClientHello, and a client that stops after it.
    for cut in (len(hello) // 2, len(hello)):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(hello[:cut])
        held.append(s)
    served()

    # 1,000 half-finished handshakes at once.
    many = []
    for i in range(1000):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(hello[:100 + i % 50])
        many.append(s)
    served()
    for s in many:
        s.close()
    served()

    # A TLS 1.2-only client: refused with one line in the log.
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-tls1_2", "-alpn",
                        "fsproto/1"], input=b"", capture_output=True,
                       timeout=TIMEOUT)
    check(b"CONNECTION ESTABLISHED" not in p.stdout + p.stderr and
          p.returncode != 0, "TLS 1.2 refused", p.stdout, p.stderr)
    wait_log(env, r"TLS handshake failed: the peer does not speak TLS 1\.3")
    # The wrong application protocol.
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-tls1_3", "-alpn",
                        "http/1.1"], input=b"", capture_output=True,
                       timeout=TIMEOUT)
    check(p.returncode != 0, "wrong ALPN refused", p.stdout, p.stderr)
    wait_log(env, r"TLS handshake failed: the peer does not speak fsproto/1")
    served()

    # A plaintext client on a TLS-only listener: one ERROR frame, closed.
    with fspclient.Client("127.0.0.1", port, hello=False) as c:
        c.send(fspclient.HELLO, 0, fspclient.hello_payload())
        op, rid, payload = c.read_frame()
        check(op == fspclient.ERROR and b"TLS is required" in payload,
              "plaintext refused with an ERROR", op, payload)
        check(rid == 0 and payload[:2] == bytes([0, fspclient.ST_PROTOCOL]),
              "ERROR id 0 PROTOCOL", rid, payload)
        check(closed_by_server(c.sock), "plaintext client: closed")
    wait_log(env, r"plaintext on a TLS-only listener")

    # A client that disconnects in the middle of a record.
    s, obj, out = tls_connect(port)
    obj.write(fspclient.frame(fspclient.HELLO, 0, fspclient.hello_payload()))
    rec = out.read()
    s.sendall(rec[:len(rec) // 2])
    s.close()
    served()

    # Held handshakes and the silent connection are dropped at the deadline.
    for s in held + [silent]:
        check(closed_by_server(s, 30), "dropped after the deadline")
        s.close()
    wait_log(env, r"TLS handshake not finished within 10 s")
    wait_log(env, r"nothing within 10 s")
    served()


def case_openssl_client(ctx):
    """A real OpenSSL client speaks fsproto through fsd's TLS: its HELLO is
    answered with the server's HELLO."""
    env = ctx.env("--tls", "--state-dir", ctx.state())
    hello = fspclient.frame(fspclient.HELLO, 0, fspclient.hello_payload())
    p = subprocess.Popen(["openssl", "s_client", "-quiet", "-connect",
                          "127.0.0.1:%d" % port_of(env), "-tls1_3", "-alpn",
                          "fsproto/1"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(hello)
        p.stdin.flush()
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while len(out) < fspclient.HDR_LEN and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                chunk = os.read(p.stdout.fileno(), 4096)
                check(chunk, "openssl ended early", out)
                out += chunk
    finally:
        p.kill()
        p.wait()
    check(len(out) >= fspclient.HDR_LEN, "an answer", out)
    magic, _, op, _, _, _ = fspclient.HDR.unpack(out[:fspclient.HDR_LEN])
    check(magic == fspclient.MAGIC and op == fspclient.HELLO,
          "the server's HELLO", out)


def case_sighup(ctx):
    """SIGHUP with a new key and certificate: new connections see it, an
    open watch goes on undisturbed; a broken key keeps the old one."""
    st = ctx.state()
    env = ctx.env("--tls", "--state-dir", st)
    fp1 = fingerprint(env)
    w = env.spawn("--tls", "watch", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        while "watching" not in read_line(w.stderr):
            pass
        d = ctx.certs()
        for src, dst in (("ok2.key", "key.pem"), ("ok2.pem", "cert.pem")):
            shutil.copy(os.path.join(d, src), os.path.join(st, dst))
        os.chmod(os.path.join(st, "key.pem"), 0o600)
        env.fsd.send_signal(signal.SIGHUP)
        m = wait_log(env, r"TLS certificate reloaded, key fingerprint (\S+)")
        fp2 = m.group(1)
        check(fp2 != fp1, "a new key")
        env.ok("--pin", fp2, "ls")
        rc, _, err = env.fsc("--pin", fp1, "ls")
        check(rc == 3, "the old key is gone for new connections", err)
        env.write("x", b"after reload")
        env.ok("--pin", fp2, "put", "x")
        check(read_line(w.stdout) == "added x (12 bytes)",
              "the open watch goes on")

        # A broken key: the reload fails, the current one stays.
        with open(os.path.join(st, "key.pem"), "w") as f:
            f.write("broken\n")
        env.fsd.send_signal(signal.SIGHUP)
        wait_log(env, r"TLS reload failed, keeping the current certificate")
        env.ok("--pin", fp2, "ls")
        w.send_signal(signal.SIGINT)
        check(w.wait(TIMEOUT) == 0, "watch ends cleanly")
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()


CASES = {name[5:]: fn for name, fn in globals().items()
         if name.startswith("case_")}


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in CASES:
        print(__doc__ + "\ncases: " + " ".join(CASES), file=sys.stderr)
        return 2
    case = sys.argv[4]
    fsd, fsc, mkcert = (os.path.abspath(a) for a in sys.argv[1:4])
    ctx = Ctx(fsd, fsc, mkcert)
    try:
        CASES[case](ctx)
    except Failure as e:
        print("FAIL %s: %s" % (case, e), file=sys.stderr)
        return 1
    finally:
        ctx.close()
    print("ok %s" % case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
