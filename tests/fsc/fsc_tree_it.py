#!/usr/bin/env python3
"""Integration tests of fsc's folders (protocol.md section 12) against a
real fsd, and against scripted servers where a real fsd cannot misbehave.

Usage: fsc_tree_it.py FSD FSC CASE

Each CASE starts its own fsd on 127.0.0.1:0 with a fresh root folder (see
fsc_it.py, whose Env this reuses) and runs fsc the way a user would.
Exit status 0 = pass, 1 = fail.
"""

import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsc_it import (Env, FakeServer, Failure, Pty, check,  # noqa: E402
                    read_line, TIMEOUT)

SPACE = "sp ace"
UTF8 = "caf\u00e9 \u65e5\u672c"


def write_tree(top, files):
    """Writes {relative path: bytes} below top, making the folders."""
    for rel, data in files.items():
        p = os.path.join(top, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


def make_tree(top):
    """Nested folders, empty folders, 0-byte files, names with spaces and
    non-ASCII UTF-8, and a file bigger than one DATA frame."""
    files = {
        "a/x.txt": b"hello\n",
        "a/sub/deep/zero": b"",
        "a/sub/big.bin": os.urandom(3 * 1048576 + 17),
        SPACE + "/" + UTF8 + ".txt": UTF8.encode() * 100,
        "top.txt": b"top",
        "zero": b"",
    }
    write_tree(top, files)
    for rel in ("empty", "a/empty2", "nest/deeper/deepest"):
        os.makedirs(os.path.join(top, rel))
    return files


def local_tree(top):
    """{relative path: bytes, or None for a folder} of a local tree."""
    out = {}
    for dirpath, dirs, names in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        for d in dirs:
            out[os.path.normpath(os.path.join(rel, d))] = None
        for n in names:
            with open(os.path.join(dirpath, n), "rb") as f:
                out[os.path.normpath(os.path.join(rel, n))] = f.read()
    return out


def ls_r(env, *args):
    out = env.ok("-q", "ls", "-R", *args).decode()
    return sorted(out.splitlines())


def case_tree_roundtrip(env):
    """put -r then get -r gives the same tree, byte for byte; ls -R shows
    it; both end with the count line."""
    src = env.path("tree")
    files = make_tree(src)
    total = sum(len(d) for d in files.values())
    rc, out, err = env.fsc("-q", "put", "-r", "tree")
    check(rc == 0, "put -r", rc, err)
    check(out.decode().strip() == "%d files, %d bytes" % (len(files), total),
          "put -r's count line", out)
    check(local_tree(os.path.join(env.root, "tree")) == local_tree(src),
          "the server's folder holds the tree")
    want = sorted("tree/" + k + ("/" if v is None else "")
                  for k, v in local_tree(src).items()) + ["tree/"]
    check(ls_r(env) == sorted(want), "ls -R lists the tree", ls_r(env), want)
    sub = ls_r(env, "tree/a")
    check(sub == sorted(["empty2/", "sub/", "sub/big.bin", "sub/deep/",
                         "sub/deep/zero", "x.txt"]),
          "ls -R PATH lists paths relative to PATH", sub)
    out = env.ok("-q", "ls", "tree").decode().splitlines()
    check(out == sorted(["a/", "empty/", "nest/", SPACE + "/", "top.txt",
                         "zero"]), "ls PATH marks folders", out)
    rc, out, err = env.fsc("-q", "get", "-r", "tree", "-o", "dl")
    check(rc == 0, "get -r", rc, err)
    check(out.decode().strip() == "%d files, %d bytes" % (len(files), total),
          "get -r's count line", out)
    check(local_tree(env.path("dl", "tree")) == local_tree(src),
          "get -r gives the tree back byte for byte")
    check(not any(".fsc-" in n for _, _, ns in os.walk(env.path("dl"))
                  for n in ns), "no temporary file is left")
    # A PATH that is a file, or is missing: said so, and nothing is made.
    rc, out, err = env.fsc("-q", "get", "-r", "tree/top.txt", "nothing",
                           "-o", "dl2")
    check(rc == 1 and "get tree/top.txt:" in err and "get nothing:" in err,
          "get -r of a file and of nothing", rc, err)
    check(os.listdir(env.path("dl2")) == [], "nothing made for them",
          os.listdir(env.path("dl2")))
    # The top folder itself: every file of the server, into DIR.
    env.ok("-q", "get", "-r", "/", "-o", "all")
    check(local_tree(env.path("all", "tree")) == local_tree(src),
          "get -r / downloads the whole server")
    # --as PATH puts the tree elsewhere, making the folders on the way.
    env.ok("-q", "put", "-r", "tree/a", "--as", "x/y")
    check(local_tree(os.path.join(env.root, "x", "y")) ==
          local_tree(os.path.join(src, "a")), "put -r --as PATH")


def case_tree_symlink(env):
    """A link in the local tree is skipped with a warning; the rest lands
    and the status is 0."""
    src = env.path("t")
    os.makedirs(os.path.join(src, "d"))
    env.write("t/d/real.txt", b"real")
    env.write("outside.txt", b"secret")
    os.symlink(env.path("outside.txt"), os.path.join(src, "d", "link.txt"))
    os.symlink(env.path(), os.path.join(src, "dirlink"))
    rc, out, err = env.fsc("-q", "put", "-r", "t")
    check(rc == 0, "put -r with links", rc, err)
    check("t/d/link.txt: skipping a symbolic link" in err and
          "t/dirlink: skipping a symbolic link" in err,
          "each link is named on stderr", err)
    check(out.decode().strip() == "1 files, 4 bytes", "count line", out)
    check(local_tree(os.path.join(env.root, "t")) ==
          {"d": None, "d/real.txt": b"real"}, "only the file landed",
          local_tree(os.path.join(env.root, "t")))


def case_tree_one_fails(env):
    """A file the server refuses is reported; the others land; status 1."""
    src = env.path("t")
    os.makedirs(os.path.join(src, "sub"))
    for i in range(20):
        env.write("t/f%02d.txt" % i, b"%d" % i)
    env.write("t/sub/x", b"x")
    env.write("t/.hidden", b"h")
    # On the server, t/sub is a file: t/sub/x cannot be stored there.
    os.makedirs(os.path.join(env.root, "t"))
    with open(os.path.join(env.root, "t", "sub"), "wb") as f:
        f.write(b"in the way")
    time.sleep(0.3)  # fsd's watcher takes the file in
    rc, out, err = env.fsc("-q", "put", "-r", "t")
    check(rc == 1, "put -r with failures exits 1", rc, err)
    check("put t/sub/x:" in err, "the refused file is named", err)
    check("t/.hidden" in err, "the name the server cannot hold is named", err)
    check(out.decode().strip() == "20 files, 30 bytes", "count line", out)
    for i in range(20):
        check(env.on_server("t/f%02d.txt" % i) == b"%d" % i,
              "file %d landed" % i)
    # get -r: a file that fails (its local place is taken by a folder) is
    # reported, the others land.
    os.makedirs(env.path("dl", "t", "f03.txt"))
    rc, out, err = env.fsc("-q", "get", "-r", "t", "-o", "dl")
    check(rc == 1 and "f03.txt" in err, "get -r with a failure", rc, err)
    check(out.decode().strip() == "20 files, %d bytes" % (30 - 1 + 10),
          "get -r count line", out, err)


# store.h's FSC_SMALL_MAX: files up to it are held in memory and written
# in one go; bigger ones are streamed.
SMALL_MAX = 65536


def sized_tree(top):
    """Files on both sides of SMALL_MAX (and of one DATA frame), and a few
    hundred small ones over several folders."""
    files = {}
    for n in (0, 1, 4096, SMALL_MAX - 1, SMALL_MAX, SMALL_MAX + 1, 200000,
              1048576 + 3):
        files["edge/f%d" % n] = os.urandom(n)
    for i in range(300):
        files["d%d/s%03d" % (i % 7, i)] = os.urandom((i * 977) % 70000)
    write_tree(top, files)
    return files


def no_temp_files(top):
    return [os.path.join(d, n) for d, _, ns in os.walk(top) for n in ns
            if ".fsc-" in n]


def case_tree_sizes(env):
    """Small files (held in memory, one disk job each) and big ones
    (streamed) both arrive byte for byte, both ways; a second get -r over
    the first replaces every file; a link planted in the output tree is
    left alone whichever way its file goes."""
    src = env.path("t")
    files = sized_tree(src)
    total = sum(len(d) for d in files.values())
    rc, out, err = env.fsc("-q", "put", "-r", "t")
    check(rc == 0, "put -r", rc, err)
    check(out.decode().strip() == "%d files, %d bytes" % (len(files), total),
          "put -r's count line", out)
    check(local_tree(os.path.join(env.root, "t")) == local_tree(src),
          "the server holds the tree byte for byte")
    rc, out, err = env.fsc("-q", "get", "-r", "t", "-o", "dl")
    check(rc == 0, "get -r", rc, err)
    check(local_tree(env.path("dl", "t")) == local_tree(src),
          "get -r gives the tree back byte for byte")
    mode = os.stat(env.path("dl", "t", "edge", "f1")).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    check(mode == 0o666 & ~umask, "a small file gets 0666 less the umask",
          oct(mode))
    # Again into the same folder: every file is replaced, none is doubled.
    for rel in ("edge/f1", "edge/f200000"):
        with open(env.path("dl", "t", rel), "wb") as f:
            f.write(b"stale")
    rc, out, err = env.fsc("-q", "get", "-r", "t", "-o", "dl")
    check(rc == 0, "get -r over an earlier copy", rc, err)
    check(local_tree(env.path("dl", "t")) == local_tree(src),
          "the earlier copy is replaced byte for byte")
    check(no_temp_files(env.path("dl")) == [], "no temporary file is left",
          no_temp_files(env.path("dl")))
    # Links where a small and a big file go: left alone, said so, and what
    # they point at is untouched.
    env.write("victim", b"keep")
    for rel in ("edge/f1", "edge/f200000"):
        os.unlink(env.path("dl", "t", rel))
        os.symlink(env.path("victim"), env.path("dl", "t", rel))
    rc, out, err = env.fsc("-q", "get", "-r", "t", "-o", "dl")
    check(rc == 1, "get -r with links in the way exits 1", rc, err)
    check("edge/f1 is not a regular file; left alone" in err and
          "edge/f200000 is not a regular file; left alone" in err,
          "each link is named", err)
    check(env.read("victim") == b"keep", "nothing written through a link")
    check(out.decode().strip() == "%d files, %d bytes" %
          (len(files) - 2, total - 1 - 200000), "count line", out)
    check(no_temp_files(env.path("dl")) == [], "no temporary file is left")


def fsize_limit(limit):
    """preexec for fsc: files it writes stop at limit bytes, as on a full
    disk (a write fails with EFBIG instead of a signal)."""
    def run():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    return run


def case_tree_fail_midway(env):
    """get -r where writing fails midway for some files (small ones held in
    memory and big ones streamed): each is reported, none is left partial
    or as a temporary file, the others land whole; status 1."""
    src = env.path("t")
    files = sized_tree(src)
    env.ok("-q", "put", "-r", "t")
    limit = 20000
    rc, out, err = env.fsc("-q", "get", "-r", "t", "-o", "dl",
                           preexec=fsize_limit(limit))
    check(rc == 1, "get -r with failed writes exits 1", rc, err)
    got = local_tree(env.path("dl", "t"))
    for rel, data in files.items():
        if len(data) <= limit:
            check(got.get(rel) == data, "%s landed whole" % rel)
        else:
            check(rel not in got, "%s is not there, not even in part" % rel)
            check("get t/%s:" % rel in err, "%s is reported" % rel, err)
    fails = sum(1 for d in files.values() if len(d) > limit)
    check(err.count("\n") == fails, "one line per failed file", err)
    check(no_temp_files(env.path("dl")) == [], "no temporary file is left",
          no_temp_files(env.path("dl")))


def case_folder_commands(env):
    """mkdir, mv, rm -r and size of folders behave as their man page says."""
    env.ok("mkdir", "-p", "a/b/c")
    check(os.path.isdir(os.path.join(env.root, "a", "b", "c")), "mkdir -p")
    rc, _, err = env.fsc("mkdir", "a")
    check(rc == 1 and "mkdir a:" in err and err.count("\n") == 1,
          "mkdir of an existing folder", rc, err)
    rc, _, err = env.fsc("mkdir", "no/such/parent")
    check(rc == 1, "mkdir without -p needs the parent", rc, err)
    env.ok("mkdir", "a/d")
    env.write("f.txt", b"12345")
    env.ok("put", "f.txt", "--as", "a/b/f.txt")
    check(env.on_server("a/b/f.txt") == b"12345", "put --as PATH")
    out = env.ok("size", "a", "a/b/f.txt").decode()
    check(out == "folder\ta\n5\ta/b/f.txt\n", "size of a folder", out)
    env.ok("mv", "a/b/f.txt", "a/g.txt")
    check(env.on_server("a/g.txt") == b"12345" and
          env.on_server("a/b/f.txt") is None, "mv of a file")
    env.ok("mv", "a/b", "a/d/b2")
    check(os.path.isdir(os.path.join(env.root, "a", "d", "b2", "c")),
          "mv of a folder")
    env.ok("put", "f.txt", "--as", "a/h.txt")
    rc, _, err = env.fsc("mv", "--no-clobber", "a/g.txt", "a/h.txt")
    check(rc == 1 and env.on_server("a/g.txt") == b"12345",
          "mv --no-clobber", rc, err)
    rc, _, err = env.fsc("rm", "a")
    check(rc == 1 and "rm a:" in err, "rm of a folder that is not empty",
          rc, err)
    env.ok("rm", "a/d/b2/c")
    check(not os.path.exists(os.path.join(env.root, "a", "d", "b2", "c")),
          "rm of an empty folder")
    # A link the server will not remove: one "skipped" line, status 1, and
    # everything else gone.
    os.symlink("/etc", os.path.join(env.root, "a", "d", "b2", "link"))
    time.sleep(0.3)
    rc, _, err = env.fsc("rm", "-r", "a")
    check(rc == 1 and "rm a: skipped a/d/b2/link:" in err, "rm -r with an "
          "entry the server skips", rc, err)
    check(sorted(os.listdir(os.path.join(env.root, "a"))) == ["d"],
          "the rest is removed", os.listdir(os.path.join(env.root, "a")))
    os.unlink(os.path.join(env.root, "a", "d", "b2", "link"))
    time.sleep(0.3)
    env.ok("rm", "-r", "a")
    check(not os.path.exists(os.path.join(env.root, "a")), "rm -r")
    check(env.ok("ls").strip() == b"f.txt" or env.ok("ls") == b"",
          "ls after rm -r", env.ok("ls"))
    os.makedirs(env.path("localdir"))
    rc, _, err = env.fsc("put", "localdir")
    check(rc == 1 and "put -r" in err, "put of a folder points to -r", err)
    env.ok("mkdir", "g")
    rc, _, err = env.fsc("get", "g", "-o", "x")
    check(rc == 1 and "get -r" in err, "get of a folder points to -r", err)
    rc, _, err = env.fsc("ls", "nothing")
    check(rc == 1 and "ls nothing:" in err, "ls of a missing folder", rc, err)


def case_shell_folders(env):
    """The shell's cd and pwd, and paths relative to its folder."""
    os.makedirs(os.path.join(env.root, "p", "q"))
    with open(os.path.join(env.root, "p", "q", "z.txt"), "wb") as f:
        f.write(b"zz")
    time.sleep(0.3)
    script = ("pwd\ncd p\npwd\nls\ncd q\nsize z.txt\nmkdir new\n"
              "mv z.txt new/z2.txt\ncd ..\npwd\nls -R\ncd /nonexistent\n"
              "pwd\ncd /\npwd\n")
    rc, out, err = env.fsc("shell", input=script.encode())
    lines = out.decode().splitlines()
    check(rc == 1 and "cd /nonexistent:" in err, "a failed cd", rc, err)
    want = ["/", "/p", "q/", "2", "/p", "q/", "q/new/", "q/new/z2.txt", "/p",
            "/"]
    check([l for l in lines if not l.startswith(("added", "removed",
                                                 "renamed", "replaced"))]
          == want, "shell output", lines, err)
    check(env.on_server("p/q/new/z2.txt") == b"zz", "mv in the shell")
    # On a terminal, the prompt shows the current folder.
    sh = Pty([env.fsc_path, "-s", env.server, "shell"], env.work)
    try:
        sh.expect(rb"fsc> ")
        sh.send(b"cd p/q\r")
        sh.expect(rb"fsc:/p/q> ")
        sh.send(b"cd ..\r")
        sh.expect(rb"fsc:/p> ")
        sh.send(b"quit\r")
        check(sh.wait() == 0, "the shell exits 0")
    finally:
        os.close(sh.fd)


def case_watch_subtree(env):
    """watch PATH prints the events of that subtree with full paths, and a
    rename as OLD -> NEW."""
    os.makedirs(os.path.join(env.root, "w", "in"))
    os.makedirs(os.path.join(env.root, "other"))
    time.sleep(0.3)
    p = env.spawn("watch", "w", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        line = read_line(p.stderr)
        check("watching" in line, "watch says it started", line)
        env.write("a.txt", b"abc")
        env.ok("put", "a.txt", "--as", "other/a.txt")
        env.ok("put", "a.txt", "--as", "w/in/a.txt")
        check(read_line(p.stdout) == "added w/in/a.txt (3 bytes)",
              "an event below the folder, with its full path")
        env.ok("mv", "w/in/a.txt", "w/b.txt")
        line = read_line(p.stdout)
        check(line == "renamed w/in/a.txt -> w/b.txt",
              "a rename as OLD -> NEW", line)
        env.ok("mkdir", "w/dir")
        line = read_line(p.stdout)
        check(line == "added w/dir/", "a folder ends with '/'", line)
    finally:
        p.terminate()
        p.wait(TIMEOUT)
    rest = p.stdout.read().decode()
    check("other/" not in rest, "events elsewhere are not shown", rest)


def case_tree_progress(env):
    """One progress bar for a whole tree on a terminal, labelled with the
    number of files, that reaches 100% of the tree's bytes."""
    os.makedirs(env.path("t", "d"))
    for i in range(30):
        env.write("t/d/f%02d.bin" % i, os.urandom(100000))
    t = Pty([env.fsc_path, "-s", env.server, "put", "-r", "t"], env.work)
    try:
        t.expect(rb"30 files +100% \[=+\] 2\.9M/2\.9M")
        check(t.wait() == 0, "put -r on a terminal exits 0")
        check(b"f03.bin" not in t.out, "no bar per file", t.out)
    finally:
        os.close(t.fd)
    t = Pty([env.fsc_path, "-s", env.server, "get", "-r", "t", "-o", "dl"],
            env.work)
    try:
        t.expect(rb"30 files +100% \[=+\] 2\.9M/2\.9M")
        check(t.wait() == 0, "get -r on a terminal exits 0")
    finally:
        os.close(t.fd)
    check(local_tree(env.path("dl", "t")) == local_tree(env.path("t")),
          "the tree came back")


def wait_for(pred, what, proc=None):
    """Waits until pred() holds; fails at once, with what proc printed,
    when proc ends first."""
    deadline = time.monotonic() + TIMEOUT
    while not pred():
        if proc is not None and proc.poll() is not None:
            check(pred(), what + ": the client ended first", proc.returncode,
                  proc.stdout.read(), proc.stderr.read())
            return
        check(time.monotonic() < deadline, "timed out: " + what)
        time.sleep(0.01)


def check_whole(top, src, what):
    """Every file below top is whole (as in src), none is temporary."""
    for rel, data in local_tree(top).items():
        check(".fsc-" not in rel and ".fsd-" not in rel,
              what + ": a temporary file is left", rel)
        check(data is None or data == src.get(rel),
              what + ": a file is not whole", rel)


def case_tree_interrupt(env):
    """Ctrl-C during get -r and put -r: exit 130, no temporary file left
    on either side, and every file that landed is whole."""
    src_dir = env.path("t")
    for i in range(400):
        p = os.path.join(src_dir, "d%d" % (i % 10), "f%03d" % i)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(os.urandom(65536))
    src = local_tree(src_dir)
    env.ok("-q", "put", "-r", "t")
    p = env.spawn("-q", "get", "-r", "t", "-o", "dl",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: any(ns for _, _, ns in os.walk(env.path("dl"))),
             "a first downloaded file", p)
    p.send_signal(signal.SIGINT)
    rc = p.wait(TIMEOUT)
    check(rc in (130, 0), "get -r stopped by Ctrl-C: exit 130", rc,
          p.stderr.read())
    check_whole(env.path("dl", "t"), src, "get -r")
    p = env.spawn("-q", "put", "-r", "t", "--as", "t2",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: os.path.isdir(os.path.join(env.root, "t2")),
             "a first uploaded folder", p)
    p.send_signal(signal.SIGINT)
    rc = p.wait(TIMEOUT)
    check(rc in (130, 0), "put -r stopped by Ctrl-C: exit 130", rc,
          p.stderr.read())
    # The server drops the uploads that were cut off (protocol.md section
    # 3); it does so as it notices the disconnect.
    wait_for(lambda: not any(".fsd-" in n for _, _, ns in
                             os.walk(os.path.join(env.root, "t2"))
                             for n in ns), "the server's temporary files go")
    check_whole(os.path.join(env.root, "t2"), src, "put -r")


def case_tree_resume(env):
    """get -r -c after an interrupted or older copy: files already there
    whole are kept as they are (same inode), changed or missing ones are
    fetched, a partial copy is resumed, and the count line says how many
    were kept. A link planted as a partial copy is not followed."""
    alog = env.path("access.log")
    env.fsd_args += ["--access-log", alog]
    env.restart()
    src = env.path("t")
    big = os.urandom(2 * 1048576 + 5)
    files = {"a/same.txt": b"same\n" * 100, "a/changed.txt": b"server" * 50,
             "a/gone.txt": b"gone", "b/big.bin": big, "b/zero": b"",
             "c.txt": b"c" * 70000}
    write_tree(src, files)
    env.ok("-q", "put", "-r", "t")
    env.ok("-q", "get", "-r", "t", "-o", "dl")
    dl = env.path("dl", "t")
    check(local_tree(dl) == local_tree(src), "the first copy is whole")
    kept = os.stat(os.path.join(dl, "a", "same.txt")).st_ino
    # The local copy drifts: one file changed (same size), one removed,
    # one cut short into the partial copy an interrupted get -c leaves.
    with open(os.path.join(dl, "a", "changed.txt"), "wb") as f:
        f.write(b"local!" * 50)
    os.unlink(os.path.join(dl, "a", "gone.txt"))
    os.rename(os.path.join(dl, "b", "big.bin"),
              os.path.join(dl, "b", "big.bin.fsc-part"))
    with open(os.path.join(dl, "b", "big.bin.fsc-part"), "r+b") as f:
        f.truncate(1048576)
    # And the server's c.txt grows by a byte: same start, not the same file.
    with open(os.path.join(env.root, "t", "c.txt"), "ab") as f:
        f.write(b"+")
    files["c.txt"] += b"+"
    with open(os.path.join(src, "c.txt"), "ab") as f:
        f.write(b"+")
    with open(alog, "rb") as f:
        logged = len(f.read())
    rc, out, err = env.fsc("-q", "get", "-r", "-c", "t", "-o", "dl")
    check(rc == 0, "get -r -c", rc, err)
    # What the server sent: the partial copy's rest only, and nothing of
    # the files already there (fsd writes its access log shortly after).
    gets = {}
    deadline = time.monotonic() + TIMEOUT
    while len(gets) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
        with open(alog, "rb") as f:
            f.seek(logged)
            lines = f.read().decode(errors="replace").splitlines()
        gets = {w[4].strip('"'): int(w[5]) for w in map(str.split, lines)
                if len(w) > 5 and w[3] == "GET"}
    check(gets == {"t/a/changed.txt": 300, "t/a/gone.txt": 4,
                   "t/b/big.bin": len(big) - 1048576, "t/c.txt": 70001},
          "GETs of the missing, changed and partial files only", gets)
    fetched = {"a/changed.txt", "a/gone.txt", "b/big.bin", "c.txt"}
    # The bytes are the fetched files' sizes, the resumed one's whole.
    got = sum(len(files[k]) for k in fetched)
    check(out.decode().strip() ==
          "%d files, %d bytes; %d already there" %
          (len(fetched), got, len(files) - len(fetched)),
          "get -r -c's count line", out)
    check(local_tree(dl) == local_tree(src), "get -r -c mends the copy")
    check(os.stat(os.path.join(dl, "a", "same.txt")).st_ino == kept,
          "a file already there is not written again")
    # Again: nothing left to fetch.
    rc, out, err = env.fsc("-q", "get", "-r", "-c", "t", "-o", "dl")
    check(rc == 0 and out.decode().strip() ==
          "0 files, 0 bytes; %d already there" % len(files),
          "get -r -c of a whole copy fetches nothing", rc, out, err)
    # A link where a partial copy would be is left alone, and what it
    # points to is not touched; the other files still come.
    outside = env.path("outside.txt")
    with open(outside, "wb") as f:
        f.write(b"keep")
    os.unlink(os.path.join(dl, "c.txt"))
    os.symlink(outside, os.path.join(dl, "c.txt.fsc-part"))
    os.unlink(os.path.join(dl, "a", "gone.txt"))
    rc, out, err = env.fsc("-q", "get", "-r", "-c", "t", "-o", "dl")
    check(rc == 1 and "c.txt" in err, "a linked partial copy fails its file",
          rc, err)
    with open(outside, "rb") as f:
        check(f.read() == b"keep", "the link's target is untouched")
    with open(os.path.join(dl, "a", "gone.txt"), "rb") as f:
        check(f.read() == files["a/gone.txt"], "the other files still come")


def case_tree_put_resume(env):
    """put -r -c after an interrupted or older upload: files already on
    the server with the same size and bytes are not sent again (the
    server's file keeps its inode), the others are; the count line says
    how many were there. put -c of one file does the same."""
    src = env.path("t")
    files = {"a/same.txt": b"same\n" * 100, "a/changed.txt": b"local1" * 50,
             "b/big.bin": os.urandom(2 * 1048576 + 5), "b/zero": b"",
             "c.txt": b"c" * 70000}
    write_tree(src, files)
    env.ok("-q", "put", "-r", "t")
    on = os.path.join(env.root, "t")

    def inodes():
        return {rel: os.stat(os.path.join(on, rel)).st_ino for rel in files}

    before = inodes()
    # Locally: one file changed (same size), one new; on the server: one
    # file grown by a byte (the same start), one removed.
    with open(os.path.join(src, "a", "changed.txt"), "wb") as f:
        f.write(b"local2" * 50)
    with open(os.path.join(src, "a", "new.txt"), "wb") as f:
        f.write(b"new")
    files["a/new.txt"] = b"new"
    with open(os.path.join(on, "c.txt"), "ab") as f:
        f.write(b"+")
    os.unlink(os.path.join(on, "b", "zero"))
    sent = {"a/changed.txt", "a/new.txt", "b/zero", "c.txt"}
    rc, out, err = env.fsc("-q", "put", "-r", "-c", "t")
    check(rc == 0, "put -r -c", rc, err)
    check(out.decode().strip() == "%d files, %d bytes; %d already there" %
          (len(sent), sum(len(files[k]) for k in sent), len(files) - len(sent)),
          "put -r -c's count line", out)
    check(local_tree(on) == local_tree(src), "the server's copy is mended")
    after = inodes()
    for rel in ("a/same.txt", "b/big.bin"):
        check(after[rel] == before[rel], "not sent again", rel)
    check(after["a/changed.txt"] != before["a/changed.txt"],
          "a changed file is sent")
    rc, out, err = env.fsc("-q", "put", "-r", "-c", "t")
    check(rc == 0 and out.decode().strip() ==
          "0 files, 0 bytes; %d already there" % len(files),
          "put -r -c of a whole copy sends nothing", rc, out, err)
    # One file: kept when the same, sent when not.
    env.write("one.bin", os.urandom(300000))
    env.ok("-q", "put", "one.bin")
    ino = os.stat(os.path.join(env.root, "one.bin")).st_ino
    rc, out, err = env.fsc("put", "-c", "one.bin")
    check(rc == 0 and "one.bin: already there" in out.decode(),
          "put -c of the same file says so", rc, out, err)
    check(os.stat(os.path.join(env.root, "one.bin")).st_ino == ino,
          "put -c of the same file sends nothing")
    env.write("one.bin", os.urandom(300000))
    env.ok("-q", "put", "-c", "one.bin")
    check(env.on_server("one.bin") == env.read("one.bin"),
          "put -c of another file sends it")


class OldServer(FakeServer):
    """A server that speaks protocol version 2: one flat folder."""

    def answer(self, op, rid, payload):
        if op == 0x01:  # HELLO, version 2
            return self.frame(0x01, 0, struct.pack(
                ">HHIIQ", 2, 0, 1 << 20, 64, 6) + b"old/v2")
        if op == 0x10:  # LIST: one file (version 1 entries)
            name = b"flat.txt"
            entry = struct.pack(">QqH", 3, 0, len(name)) + name
            return (self.frame(0x42, rid, struct.pack(">I", 1) + entry)
                    + self.frame(0x40, rid))
        if op in (0x1a, 0x1b):
            self.sent_tree = True
        return FakeServer.answer(self, op, rid, payload)


def case_old_server(env):
    """Against a version 2 server fsc works as before, and the folder
    commands say the server has no folders, exit 1, and send nothing."""
    old = OldServer()
    old.sent_tree = False
    try:
        rc, out, err = env.fsc("-s", old.server, "ls", server=False)
        check(rc == 0 and out == b"flat.txt\n", "ls", rc, out, err)
        for args in (["mkdir", "x"], ["mv", "a", "b"], ["rm", "-r", "x"],
                     ["ls", "x"], ["put", "-r", "."], ["get", "-r", "x"],
                     ["watch", "x"]):
            rc, out, err = env.fsc("-s", old.server, *args, server=False)
            check(rc == 1 and err.strip().endswith(
                "server does not serve folders (protocol version 2)") and
                err.count("\n") == 1, "%s against version 2" % args, rc, err)
        check(not old.sent_tree, "no MKDIR or RENAME was sent")
    finally:
        old.close()


class HostileServer(FakeServer):
    """A version 3 server whose recursive LIST names the paths in PATHS."""

    PATHS = []

    def answer(self, op, rid, payload):
        if op == 0x01:
            return self.frame(0x01, 0, struct.pack(
                ">HHIIQ", 3, 0, 1 << 20, 64, 6) + b"liar/3")
        if op == 0x10:
            body = b""
            for path, typ in self.PATHS:
                body += struct.pack(">QqBH", 3, 0, typ, len(path)) + path
            return (self.frame(0x42, rid,
                               struct.pack(">I", len(self.PATHS)) + body)
                    + self.frame(0x40, rid))
        return FakeServer.answer(self, op, rid, payload)


def case_get_r_hostile(env):
    """get -r writes only beneath -o DIR: a path that climbs out is never
    taken (the whole listing is refused as malformed), and a local link in
    the way is not followed."""
    os.makedirs(env.path("outside"))
    for path in (b"../evil", b"ok/../../evil", b"/etc/evil", b".ssh/evil",
                 b"ok//evil"):
        bad = HostileServer()
        bad.PATHS = [(b"ok", 2), (path, 1)]
        try:
            rc, out, err = env.fsc("-s", bad.server, "-q", "get", "-r", "t",
                                   "-o", "dl", server=False)
        finally:
            bad.close()
        check(rc == 3 and "malformed ENTRIES" in err, "refused %r" % path,
              rc, err)
    bad = HostileServer()
    bad.PATHS = [(b"ok", 2), (b"ok/f", 1), (b"link", 2), (b"link/evil", 1)]
    try:
        os.makedirs(env.path("dl", "t"), exist_ok=True)
        os.symlink(env.path("outside"), env.path("dl", "t", "link"))
        rc, out, err = env.fsc("-s", bad.server, "-q", "get", "-r", "t",
                               "-o", "dl", server=False)
    finally:
        bad.close()
    check(rc == 1, "exit 1", rc, err)
    check(err.count("a symbolic link is in the way") == 2, "the link", err)
    check("get t/ok/f:" in err, "the file that failed is named", err)
    check(os.listdir(env.path("outside")) == [], "nothing outside",
          os.listdir(env.path("outside")))
    check(not any("evil" in n for _, ds, ns in os.walk(env.tmp)
                  for n in ds + ns), "no evil file anywhere")


CASES = {name[5:]: fn for name, fn in globals().items()
         if name.startswith("case_")}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(__doc__ + "\ncases: " + " ".join(CASES), file=sys.stderr)
        return 2
    fsd, fsc, case = sys.argv[1:]
    fsd, fsc = os.path.abspath(fsd), os.path.abspath(fsc)
    try:
        env = Env(fsd, fsc)
    except Failure as e:
        print("FAIL %s: %s" % (case, e), file=sys.stderr)
        return 1
    try:
        CASES[case](env)
    except Failure as e:
        print("FAIL %s: %s" % (case, e), file=sys.stderr)
        env.stop()
        with open(env.log, errors="replace") as log:
            lines = log.readlines()
        # A sanitizer's report from its first line, or the last lines.
        first = [i for i, line in enumerate(lines) if "==ERROR:" in line]
        lines = lines[first[0]:first[0] + 60] if first else lines[-20:]
        print("fsd's log:\n" + "".join(lines), file=sys.stderr)
        return 1
    finally:
        env.close()
    print("ok %s" % case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
