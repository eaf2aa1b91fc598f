#!/usr/bin/env python3
"""Integration tests of fsc's authentication against a real fsd with a users
file: fsc keygen, -u/-i and their environment variables, refusals (exit 3
naming the user and the server) and rights (exit 1 naming the file).

Usage: fsc_auth_it.py FSD FSC CASE (exit 0 = pass, 1 = fail)."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fsc_it import Env, Failure, check  # noqa: E402

TIMEOUT = 30


class Keys:
    """Keys made with fsc keygen, one config folder per user."""

    def __init__(self, fsc):
        self.fsc = fsc
        self.tmp = tempfile.mkdtemp(prefix="fsc-keys-")
        self.lines = {}

    def cfg(self, user):
        return os.path.join(self.tmp, user)

    def key(self, user):
        return os.path.join(self.cfg(user), "fsc", "id_ed25519")

    def keygen(self, user, *extra):
        env = dict(os.environ, XDG_CONFIG_HOME=self.cfg(user))
        env.pop("FSC_USER", None)
        env.pop("FSC_IDENTITY", None)
        p = subprocess.run([self.fsc, "-u", user] + list(extra) + ["keygen"],
                           capture_output=True, env=env, timeout=TIMEOUT)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def make(self, user):
        rc, out, err = self.keygen(user)
        check(rc == 0, "keygen %s: exit %d" % (user, rc), err)
        self.lines[user] = out.strip()
        return self.lines[user]

    def users_file(self, rights):
        path = os.path.join(self.tmp, "users")
        with open(path, "w") as f:
            f.write("# made by the test\n")
            for user, r in rights.items():
                words = self.lines[user].split(" ")
                words[1] = r
                f.write(" ".join(words) + "\n")
        os.chmod(path, 0o600)
        return path

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def as_user(keys, user):
    """The environment of a user whose key is in its default place."""
    return {"XDG_CONFIG_HOME": keys.cfg(user), "FSC_USER": user}


def case_keygen(fsd, fsc):
    keys = Keys(fsc)
    try:
        rc, out, err = keys.keygen("dana")
        check(rc == 0, "keygen: exit %d" % rc, err)
        words = out.strip().split(" ")
        check(words[:3] == ["dana", "read,write,delete,notice", "ssh-ed25519"],
              "keygen printed %r" % out)
        check(words[4].startswith("dana@"), "comment %r" % words[4])
        st = os.stat(keys.key("dana"))
        check(stat.S_IMODE(st.st_mode) == 0o600, "mode %o" % st.st_mode)
        before = open(keys.key("dana"), "rb").read()
        # ssh-keygen reads it and prints the same public key.
        p = subprocess.run(["ssh-keygen", "-y", "-f", keys.key("dana")],
                           capture_output=True, timeout=TIMEOUT)
        check(p.returncode == 0 and
              p.stdout.decode().split(" ")[:2] == words[2:4],
              "ssh-keygen -y disagrees", p.stdout, p.stderr)
        # Never replaced.
        rc, out, err = keys.keygen("dana")
        check(rc == 1 and "already exists" in err and out == "",
              "second keygen: exit %d" % rc, err)
        check(open(keys.key("dana"), "rb").read() == before, "key replaced")
        # -i chooses the file.
        other = os.path.join(keys.tmp, "other_key")
        rc, out, err = keys.keygen("dana", "-i", other)
        check(rc == 0 and os.path.exists(other), "keygen -i: exit %d" % rc,
              err)
    finally:
        keys.close()


def with_server(fsd, fsc, rights, body):
    keys = Keys(fsc)
    env = None
    try:
        for user in ("dana", "bob", "mallory"):
            keys.make(user)
        users = keys.users_file(rights)
        env = Env(fsd, fsc, fsd_args=["--users", users])
        body(env, keys)
    finally:
        if env is not None:
            env.close()
        keys.close()


def case_login(fsd, fsc):
    def body(env, keys):
        dana = as_user(keys, "dana")
        env.write("a.txt", b"hello")
        env.ok("put", "a.txt", env=dana)
        check(env.on_server("a.txt") == b"hello", "upload missing")
        out = env.ok("ls", env=dana)
        check(out == b"a.txt\n", "ls printed %r" % out)
        os.remove(env.path("a.txt"))
        env.ok("get", "a.txt", env=dana)
        check(env.read("a.txt") == b"hello", "download differs")
        # -u and -i instead of the environment.
        out = env.ok("-u", "dana", "-i", keys.key("dana"), "size", "a.txt")
        check(out.strip() == b"5", "size printed %r" % out)
        # The shell authenticates the same way.
        rc, out, err = env.fsc("shell", input=b"ls\nsize a.txt\n", env=dana)
        check(rc == 0 and b"a.txt" in out and b"5" in out,
              "shell: exit %d" % rc, out, err)
        rc, out, err = env.fsc("shell", input=b"ls\n",
                               env=as_user(keys, "mallory"))
        check(rc == 3 and "user mallory" in err, "shell refused: exit %d" % rc,
              err)
        env.ok("rm", "a.txt", env=dana)
        check(env.on_server("a.txt") is None, "rm did not remove")
        # Over TLS the signature covers the channel (the exporter's 32
        # bytes); over plaintext there is nothing to bind to.
        want = 32 if getattr(env, "tls", False) else 0
        with open(env.log) as f:
            log = f.read()
        check("user dana authenticated (channel binding: %d bytes)" % want
              in log, "no login with a %d-byte binding in fsd's log" % want,
              log[-2000:])
    with_server(fsd, fsc, {"dana": "read,write,delete,notice",
                           "bob": "read"}, body)


def case_refused(fsd, fsc):
    def body(env, keys):
        env.write("x", b"x")
        # A user the server does not know, with a good key of its own.
        rc, out, err = env.fsc("ls", env=as_user(keys, "mallory"))
        check(rc == 3, "unknown user: exit %d" % rc, err)
        check("user mallory" in err and env.server in err,
              "message names neither user nor server", err)
        # A known user name with someone else's key.
        rc, out, err = env.fsc("-u", "dana", "-i", keys.key("bob"), "ls")
        check(rc == 3 and "user dana" in err, "wrong key: exit %d" % rc, err)
        # No key at all.
        rc, out, err = env.fsc("ls", env={
            "XDG_CONFIG_HOME": os.path.join(keys.tmp, "nobody"),
            "FSC_USER": "dana"})
        check(rc == 3 and "fsc keygen" in err, "no key: exit %d" % rc, err)
        # A key others may read is refused before it is used.
        os.chmod(keys.key("dana"), 0o644)
        rc, out, err = env.fsc("ls", env=as_user(keys, "dana"))
        check(rc == 3 and "too open" in err, "open key: exit %d" % rc, err)
        os.chmod(keys.key("dana"), 0o600)
        env.ok("ls", env=as_user(keys, "dana"))
    with_server(fsd, fsc, {"dana": "read,write,delete,notice",
                           "bob": "read"}, body)


def case_read_only_user(fsd, fsc):
    def body(env, keys):
        bob = as_user(keys, "bob")
        with open(os.path.join(env.root, "keep.txt"), "wb") as f:
            f.write(b"original")
        env.write("keep.txt", b"changed!")
        for args in (("put", "keep.txt"), ("rm", "keep.txt")):
            rc, out, err = env.fsc(*args, env=bob)
            check(rc == 1, "%s: exit %d" % (args[0], rc), err)
            check("keep.txt" in err and "user bob lacks the" in err,
                  "%s: message does not name the file" % args[0], err)
        rc, out, err = env.fsc("announce", "hello", env=bob)
        check(rc == 1 and "notice right" in err, "announce: exit %d" % rc,
              err)
        check(env.on_server("keep.txt") == b"original", "disk changed")
        os.remove(env.path("keep.txt"))
        env.ok("get", "keep.txt", env=bob)
        check(env.read("keep.txt") == b"original", "bob cannot read")
    with_server(fsd, fsc, {"dana": "read,write,delete,notice",
                           "bob": "read"}, body)


def case_ssh_key(fsd, fsc):
    keys = Keys(fsc)
    env = None
    try:
        keys.make("dana")
        key = os.path.join(keys.tmp, "id_ed25519")
        p = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                            "-f", key], capture_output=True, timeout=TIMEOUT)
        check(p.returncode == 0, "ssh-keygen failed", p.stderr)
        pub = open(key + ".pub").read().strip()
        users = keys.users_file({"dana": "read"})
        with open(users, "a") as f:
            f.write("erin read,write %s\n" % pub)
        env = Env(fsd, fsc, fsd_args=["--users", users])
        env.write("e.txt", b"erin")
        env.ok("put", "e.txt", env={"FSC_USER": "erin",
                                    "FSC_IDENTITY": key})
        check(env.on_server("e.txt") == b"erin", "upload missing")
    finally:
        if env is not None:
            env.close()
        keys.close()


CASES = {name[5:]: fn for name, fn in globals().items()
         if name.startswith("case_")}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(__doc__ + "\ncases: " + " ".join(CASES), file=sys.stderr)
        return 2
    fsd, fsc, case = sys.argv[1:]
    try:
        CASES[case](os.path.abspath(fsd), os.path.abspath(fsc))
    except Failure as e:
        print("FAIL %s: %s" % (case, e), file=sys.stderr)
        return 1
    print("ok %s" % case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
