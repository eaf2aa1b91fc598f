"""Integration tests of folders and paths (protocol.md section 12): a real
fsd on 127.0.0.1:0 with a temporary root, driven over TCP by a client that
speaks version 3 with its own small encoder (on fspclient's framing).
Usage: test_tree.py --fsd PATH [unittest args]."""

import os
import shutil
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fspclient as fc  # noqa: E402
import fsdrun  # noqa: E402
import test_auth as ta  # noqa: E402

MKDIR, RENAME, SKIPPED = 0x1A, 0x1B, 0x48
FILE, FOLDER = 1, 2
ADDED, REPLACED, REMOVED, RENAMED = 1, 2, 3, 4
LIST_RECURSIVE = DELETE_RECURSIVE = MKDIR_PARENTS = NO_REPLACE = 1
NO_CLOBBER, PARENTS = 1, 2
NOT_FOLDER, IS_FOLDER, NOT_EMPTY, INTO_SELF = 22, 23, 24, 25
EVENT_WAIT = 5.0  # seconds an event of another program may take


def b(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def parse_event3(op, payload):
    """A version 3 EVENT (or NOTIFY, RESYNC) payload -> fc.Event."""
    if op != fc.EVENT:
        return fc.parse_event(op, payload)
    seq, kind, typ, size, mtime, plen = struct.unpack_from(">QBBQqH",
                                                           payload, 0)
    pos = 28
    path = payload[pos:pos + plen].decode()
    frm = payload[pos + plen:].decode()
    return fc.Event("EVENT", seq=seq, kind=kind, etype=typ, size=size,
                    mtime_ns=mtime, name=path, frm=frm)


def parse_entries3(payload):
    """A version 3 ENTRIES payload -> [(path, type, size, mtime_ns)]."""
    (count,) = struct.unpack_from(">I", payload, 0)
    pos, out = 4, []
    for _ in range(count):
        size, mtime, typ, plen = struct.unpack_from(">QqBH", payload, pos)
        pos += 19
        out.append((payload[pos:pos + plen].decode(), typ, size, mtime))
        pos += plen
    assert pos == len(payload), "ENTRIES does not add up"
    return out


class Tree(fc.Client):
    """A version 3 client: paths, folders, MKDIR, RENAME, typed events."""

    def __init__(self, port, version=3, hello=True, timeout=20, **kw):
        super().__init__("127.0.0.1", port, timeout=timeout, hello=False,
                         **kw)
        if hello:
            self.hello(version=version)

    def _take(self, op, fid, payload):
        if fid == 0 and op in fc.EVENT_OPS:
            self.events.append(parse_event3(op, payload))
            return True
        return False

    def next_frame(self, rid):
        if self._held[rid]:
            return self._held[rid].popleft()
        while True:
            op, fid, payload = self.read_frame()
            if self._take(op, fid, payload):
                continue
            if fid == rid:
                return op, fid, payload
            self._held[fid].append((op, fid, payload))

    def next_event(self):
        while not self.events:
            op, fid, payload = self.read_frame()
            if not self._take(op, fid, payload):
                self._held[fid].append((op, fid, payload))
        return self.events.popleft()

    def ls(self, path="", flags=0):
        """[(path, type, size, mtime_ns)] in the order the server sent."""
        out = []
        for op, payload in self.wait(self.request(
                fc.LIST, bytes([flags]) + b(path)), fc.OK):
            if op == fc.ENTRIES:
                out += parse_entries3(payload)
        return out

    def stat3(self, path):
        """(size, mtime_ns, type)."""
        return struct.unpack(">QqB", self.call(fc.STAT, b(path), fc.INFO))

    def put3(self, path, data, flags=0):
        data = b(data)
        rid = self.request(fc.PUT, struct.pack(">QB", len(data), flags) +
                           b(path))
        self.wait(rid, fc.READY)
        for i in range(0, len(data), 256 * 1024):
            self.send(fc.DATA, rid, data[i:i + 256 * 1024])
        self.send(fc.END, rid, struct.pack(">QQ", len(data), fc.xxh3_64(data)))
        return struct.unpack(">QqB", self.wait(rid, fc.INFO)[-1][1])

    def mkdir(self, path, flags=0):
        self.call(MKDIR, bytes([flags]) + b(path), fc.OK)

    def rename(self, frm, to, flags=0):
        self.call(RENAME, struct.pack(">BH", flags, len(b(frm))) + b(frm) +
                  b(to), fc.OK)

    def rm(self, path, flags=0):
        """DELETE; returns the SKIPPED frames as [(status, path)]."""
        frames = self.wait(self.request(fc.DELETE, bytes([flags]) + b(path)),
                           fc.OK)
        return [(struct.unpack_from(">H", p)[0], p[2:].decode())
                for op, p in frames if op == SKIPPED]

    def sub3(self, path="", epoch=0, since=0):
        return struct.unpack(">QQ", self.call(
            fc.SUBSCRIBE, struct.pack(">QQ", epoch, since) + b(path),
            fc.SUBSCRIBED))

    def status_of(self, op, payload):
        """The ERROR status request (op, payload) ends with, or 0."""
        try:
            self.wait(self.request(op, payload),
                      {fc.LIST: fc.OK, fc.STAT: fc.INFO, fc.DELETE: fc.OK,
                       MKDIR: fc.OK, RENAME: fc.OK, fc.GET: fc.END,
                       fc.HASH: fc.DIGEST, fc.PUT: fc.READY,
                       fc.SUBSCRIBE: fc.SUBSCRIBED}[op])
            return 0
        except fc.FspError as e:
            return e.status


class TreeTest(unittest.TestCase):
    """One fsd per test: its root starts empty."""

    args = ()
    env = None

    def setUp(self):
        self.srv = fsdrun.Fsd(*self.args, env=self.env).start()
        self.outside = tempfile.mkdtemp(prefix="fsd-outside-")
        with open(os.path.join(self.outside, "secret"), "wb") as f:
            f.write(b"keep me")

    def tearDown(self):
        rc = self.srv.stop()
        log = "\n".join(self.srv.log)
        self.srv.cleanup()
        shutil.rmtree(self.outside, ignore_errors=True)
        if rc != 0 or self.srv.sanitizer_report():
            raise AssertionError("fsd exited with %r:\n%s" % (rc, log))

    def client(self, **kw):
        c = Tree(self.srv.port, **kw)
        self.addCleanup(c.close)
        return c

    def status(self, fn, *args):
        try:
            fn(*args)
            return 0
        except fc.FspError as e:
            return e.status

    def event(self, c, timeout=EVENT_WAIT):
        c.sock.settimeout(timeout)
        try:
            return c.next_event()
        finally:
            c.sock.settimeout(20)

    def events_until(self, c, pred, timeout=EVENT_WAIT):
        """Events up to the first for which pred holds."""
        got, end = [], time.time() + timeout
        while time.time() < end:
            ev = self.event(c, max(0.1, end - time.time()))
            got.append(ev)
            if pred(ev):
                return got
        raise AssertionError("no such event in %r" % got)

    def assert_outside_intact(self):
        with open(os.path.join(self.outside, "secret"), "rb") as f:
            self.assertEqual(f.read(), b"keep me")


class RoundTripTest(TreeTest):
    def test_hello_speaks_version_3(self):
        self.assertEqual(self.client().server["version"], 3)

    def test_put_parents_then_list_recursive(self):
        c = self.client()
        c.put3("photos/2024/a.jpg", b"jpeg!", PARENTS)
        c.put3("photos/b.txt", b"bee", PARENTS)
        c.put3("top.txt", b"top")
        entries = c.ls("", LIST_RECURSIVE)
        paths = [e[0] for e in entries]
        self.assertEqual(sorted(paths), ["photos", "photos/2024",
                                         "photos/2024/a.jpg", "photos/b.txt",
                                         "top.txt"])
        # A folder comes before everything inside it.
        for p in paths:
            if "/" in p:
                self.assertLess(paths.index(p.rsplit("/", 1)[0]),
                                paths.index(p))
        types = {e[0]: (e[1], e[2]) for e in entries}
        self.assertEqual(types["photos"], (FOLDER, 0))
        self.assertEqual(types["photos/2024/a.jpg"], (FILE, 5))
        # Paths are relative to the folder listed.
        self.assertEqual(sorted(e[0] for e in c.ls("photos")),
                         ["2024", "b.txt"])
        self.assertEqual(sorted(e[0] for e in c.ls("photos", LIST_RECURSIVE)),
                         ["2024", "2024/a.jpg", "b.txt"])
        self.assertEqual(c.get("photos/2024/a.jpg"), b"jpeg!")
        self.assertEqual(c.stat3("photos")[2], FOLDER)
        self.assertEqual(c.stat3("photos/b.txt")[::2], (3, FILE))
        with open(self.srv.path("photos/2024/a.jpg"), "rb") as f:
            self.assertEqual(f.read(), b"jpeg!")

    def test_folder_errors(self):
        c = self.client()
        c.put3("f.txt", b"x")
        c.mkdir("d")
        self.assertEqual(self.status(c.put3, "no/such/x", b"1"), fc.ST_NOT_FOUND)
        self.assertEqual(self.status(c.put3, "f.txt/x", b"1", PARENTS),
                         NOT_FOLDER)
        self.assertEqual(self.status(c.put3, "d", b"1"), IS_FOLDER)
        self.assertEqual(self.status(c.get, "d"), IS_FOLDER)
        self.assertEqual(self.status(c.ls, "f.txt"), NOT_FOLDER)
        self.assertEqual(self.status(c.ls, "nope"), fc.ST_NOT_FOUND)
        self.assertEqual(self.status(c.stat3, "f.txt/x"), NOT_FOLDER)
        self.assertEqual(self.status(c.mkdir, "f.txt"), fc.ST_EXISTS)
        self.assertEqual(self.status(c.mkdir, "d"), fc.ST_EXISTS)
        self.assertEqual(self.status(c.mkdir, "x/y"), fc.ST_NOT_FOUND)
        c.mkdir("d", MKDIR_PARENTS)  # mkdir -p of a folder there: OK
        c.mkdir("x/y/z", MKDIR_PARENTS)
        self.assertTrue(os.path.isdir(self.srv.path("x/y/z")))
        self.assertEqual(c.stat3("x/y")[2], FOLDER)

    def test_path_attacks_are_bad_names(self):
        c = self.client()
        c.mkdir("a")
        bad = ["a/../../x", "a//b", "/abs", "a/./b", "a/", "../x", ".",
               "a/.hidden"]
        for p in bad:
            for op, payload in (
                    (fc.STAT, b(p)),
                    (fc.GET, struct.pack(">QQ", 0, fc.TO_END) + b(p)),
                    (fc.PUT, struct.pack(">QB", 1, PARENTS) + b(p)),
                    (fc.DELETE, b"\x01" + b(p)),
                    (MKDIR, b"\x01" + b(p)),
                    (fc.LIST, b"\x01" + b(p)),
                    (RENAME, struct.pack(">BH", 0, 1) + b"a" + b(p))):
                self.assertEqual(c.status_of(op, payload), fc.ST_BAD_NAME,
                                 (fc.OP_NAMES.get(op, op), p))
        self.assertFalse(os.path.exists(os.path.join(
            os.path.dirname(self.srv.root), "x")))

    def test_version_1_sees_the_flat_root(self):
        c3 = self.client()
        c3.put3("root.txt", b"r")
        c3.put3("sub/deep.txt", b"d", PARENTS)
        c1 = fc.Client("127.0.0.1", self.srv.port, timeout=20)
        self.addCleanup(c1.close)
        self.assertEqual(c1.server["version"], 3)  # announced; 1 is spoken
        self.assertEqual(sorted(c1.list()), ["root.txt"])
        for fn in (c1.stat, c1.get, c1.delete):
            with self.assertRaises(fc.FspError) as e:
                fn("sub")
            self.assertEqual(e.exception.status, fc.ST_NOT_FOUND)
        with self.assertRaises(fc.FspError) as e:
            c1.stat("sub/deep.txt")
        self.assertEqual(e.exception.status, fc.ST_BAD_NAME)
        with self.assertRaises(fc.FspError) as e:
            c1.call(MKDIR, b"\x00x", fc.OK)
        self.assertEqual(e.exception.status, fc.ST_UNKNOWN_OP)
        # Its events concern files directly in the root only.
        c1.subscribe()
        c3.put3("sub/other.txt", b"o")
        c3.mkdir("sub2")
        c3.rename("sub/other.txt", "moved.txt")
        ev = c1.next_event()
        self.assertEqual((ev.kind, ev.name), (ADDED, "moved.txt"))
        c3.put3("last.txt", b"l")
        ev = c1.next_event()
        self.assertEqual((ev.kind, ev.name), (ADDED, "last.txt"))


class FolderFlushTest(TreeTest):
    """Each upload waits for a flush of its own folder: with the flush of
    folder a/b failing (FSD_FAIL_FSYNC=a/b/., undocumented, for tests),
    uploads into a/b are not confirmed, those elsewhere are."""

    env = {"FSD_FAIL_FSYNC": "a/b/."}

    def test_each_upload_flushes_its_own_folder(self):
        c = self.client()
        c.mkdir("a/b", MKDIR_PARENTS)
        self.assertEqual(self.status(c.put3, "a/b/x", b"in b", 0), fc.ST_IO)
        self.assertEqual(self.status(c.put3, "a/y", b"in a", 0), 0)
        self.assertEqual(self.status(c.put3, "z", b"in root", 0), 0)
        # The rename was done: the file is there, only not confirmed.
        self.assertEqual(c.get("a/b/x"), b"in b")
        self.assertTrue(fsdrun.wait_until(lambda: any(
            "flush of the folder failed" in line for line in self.srv.log)))


class LinkTest(TreeTest):
    def test_symlinked_folder_is_not_listed_followed_or_deleted(self):
        c = self.client()
        c.mkdir("a")
        c.put3("a/f.txt", b"f")
        os.symlink(self.outside, self.srv.path("a/ln"))
        os.symlink(self.outside, self.srv.path("top"))
        time.sleep(0.3)  # let the watcher look at them
        self.assertEqual(sorted(e[0] for e in c.ls("", LIST_RECURSIVE)),
                         ["a", "a/f.txt"])
        for p in ("a/ln/secret", "top/secret"):
            self.assertEqual(self.status(c.get, p), fc.ST_NOT_FOUND, p)
            self.assertEqual(self.status(c.rm, p), fc.ST_NOT_FOUND, p)
            self.assertEqual(self.status(c.put3, p, b"evil"), fc.ST_NOT_FOUND,
                             p)
        self.assertEqual(self.status(c.rm, "top", DELETE_RECURSIVE),
                         fc.ST_NOT_FOUND)
        self.assertEqual(self.status(c.ls, "top"), fc.ST_NOT_FOUND)
        # A recursive delete reports the link, leaves it, and keeps the folder.
        rid = c.request(fc.DELETE, b"\x01a")
        with self.assertRaises(fc.FspError) as e:
            c.wait(rid, fc.OK)
        self.assertEqual(e.exception.status, NOT_EMPTY)
        self.assertTrue(os.path.islink(self.srv.path("a/ln")))
        self.assertFalse(os.path.exists(self.srv.path("a/f.txt")))
        self.assert_outside_intact()

    def test_skipped_frames_name_what_stayed(self):
        c = self.client()
        c.put3("old/keep/x.bin", b"x", PARENTS)
        os.symlink(self.outside, self.srv.path("old/keep/ln"))
        frames = []
        try:
            frames = c.rm("old", DELETE_RECURSIVE)
            self.fail("a link stayed: the folder cannot go")
        except fc.FspError as e:
            self.assertEqual(e.status, NOT_EMPTY)
        self.assertFalse(os.path.exists(self.srv.path("old/keep/x.bin")))
        self.assertEqual(frames, [])
        self.assert_outside_intact()

    def test_folder_swapped_for_link_during_delete(self):
        # Another program swaps folders for links to the outside while a
        # recursive delete runs: nothing outside the root may go.
        c = self.client()
        for i in range(40):
            for j in range(25):
                c.put3("big/d%02d/f%02d" % (i, j), b"z", PARENTS)
        stop = threading.Event()

        def swapper():
            n = 0
            while not stop.is_set():
                d = self.srv.path("big/d%02d" % (n % 40))
                n += 1
                try:
                    os.rename(d, d + "-moved")
                    os.symlink(self.outside, d)
                except OSError:
                    pass

        t = threading.Thread(target=swapper)
        t.start()
        try:
            try:
                c.rm("big", DELETE_RECURSIVE)
            except fc.FspError as e:
                self.assertIn(e.status, (NOT_EMPTY, fc.ST_NOT_FOUND))
        finally:
            stop.set()
            t.join()
        self.assert_outside_intact()
        self.assertEqual(os.listdir(self.outside), ["secret"])


class RenameTest(TreeTest):
    def test_rename_replaces_unless_no_replace(self):
        c = self.client()
        c.put3("a.txt", b"A")
        c.put3("b.txt", b"B")
        self.assertEqual(self.status(c.rename, "a.txt", "b.txt", NO_REPLACE),
                         fc.ST_EXISTS)
        self.assertEqual(c.get("b.txt"), b"B")
        c.rename("a.txt", "b.txt")
        self.assertEqual(c.get("b.txt"), b"A")
        self.assertEqual(self.status(c.stat3, "a.txt"), fc.ST_NOT_FOUND)
        self.assertEqual(sorted(e[0] for e in c.ls()), ["b.txt"])

    def test_folder_into_itself(self):
        c = self.client()
        c.mkdir("a/b", MKDIR_PARENTS)
        self.assertEqual(self.status(c.rename, "a", "a/b/a"), INTO_SELF)
        self.assertEqual(self.status(c.rename, "a", "a/c"), INTO_SELF)
        c.rename("a", "z")
        self.assertEqual(sorted(e[0] for e in c.ls("", LIST_RECURSIVE)),
                         ["z", "z/b"])
        self.assertTrue(os.path.isdir(self.srv.path("z/b")))

    def test_folder_moves_with_its_files(self):
        c = self.client()
        c.put3("p/q/r.txt", b"rrr", PARENTS)
        c.rename("p", "s")
        self.assertEqual(c.get("s/q/r.txt"), b"rrr")
        self.assertEqual(c.stat3("s/q/r.txt")[::2], (3, FILE))
        self.assertEqual(self.status(c.stat3, "p/q/r.txt"), fc.ST_NOT_FOUND)

    def test_get_in_flight_of_a_renamed_file_finishes_whole(self):
        data = os.urandom(8 << 20)
        c = self.client()
        c.put3("big.bin", data)
        rid = c.request(fc.GET, struct.pack(">QQ", 0, fc.TO_END) + b"big.bin")
        op, _, _ = c.check(*c.next_frame(rid))
        self.assertEqual(op, fc.BEGIN)
        other = self.client()
        other.rename("big.bin", "moved.bin")
        other.put3("big.bin", b"new")
        got = bytearray()
        while True:
            op, _, payload = c.check(*c.next_frame(rid))
            if op == fc.END:
                size, digest = struct.unpack(">QQ", payload)
                break
            got += payload
        self.assertEqual(bytes(got), data)
        self.assertEqual(digest, fc.xxh3_64(data))
        self.assertEqual(c.get("moved.bin"), data)


class EventTest(TreeTest):
    def test_subtree_watcher_sees_only_its_subtree(self):
        c = self.client()
        c.mkdir("a")
        c.mkdir("b")
        w = self.client()
        self.assertEqual(self.status(w.sub3, "nope"), fc.ST_NOT_FOUND)
        w.sub3("a")
        c.put3("b/x.txt", b"x")
        c.put3("a/y.txt", b"y")
        c.put3("a/in/z.txt", b"z", PARENTS)
        ev = w.next_event()
        self.assertEqual((ev.kind, ev.etype, ev.name), (ADDED, FILE, "a/y.txt"))
        ev = w.next_event()
        self.assertEqual((ev.kind, ev.etype, ev.name), (ADDED, FOLDER, "a/in"))
        ev = w.next_event()
        self.assertEqual((ev.kind, ev.name), (ADDED, "a/in/z.txt"))
        # A move out of the subtree is one renamed event with both paths.
        c.rename("a/y.txt", "b/y.txt")
        ev = w.next_event()
        self.assertEqual((ev.kind, ev.name, ev.frm),
                         (RENAMED, "b/y.txt", "a/y.txt"))
        c.put3("b/later.txt", b"l")
        c.put3("a/marker", b"m")
        ev = w.next_event()
        self.assertEqual(ev.name, "a/marker")
        # The replay is limited to the subtree too.
        r = self.client()
        epoch, seq = w.sub3("a")
        r.sub3("b", epoch, 1)
        names = [r.next_event().name for _ in range(4)]
        self.assertEqual(names, ["b", "b/x.txt", "b/y.txt", "b/later.txt"])

    def test_a_rename_is_one_event(self):
        c = self.client()
        c.put3("f.txt", b"f")
        w = self.client()
        w.sub3()
        c.rename("f.txt", "g.txt")
        c.put3("marker", b"m")
        ev = w.next_event()
        self.assertEqual((ev.kind, ev.etype, ev.name, ev.frm, ev.size),
                         (RENAMED, FILE, "g.txt", "f.txt", 1))
        self.assertEqual(w.next_event().name, "marker")

    def test_delete_recursive_events_contents_first(self):
        c = self.client()
        c.put3("t/u/v.txt", b"v", PARENTS)
        w = self.client()
        w.sub3()
        self.assertEqual(self.status(c.rm, "t"), NOT_EMPTY)
        self.assertEqual(c.rm("t", DELETE_RECURSIVE), [])
        got = [(e.kind, e.name) for e in (w.next_event() for _ in range(3))]
        self.assertEqual(got, [(REMOVED, "t/u/v.txt"), (REMOVED, "t/u"),
                               (REMOVED, "t")])
        self.assertFalse(os.path.exists(self.srv.path("t")))
        c.mkdir("e")
        c.rm("e")  # an empty folder goes without RECURSIVE

    def test_folders_made_by_another_program_are_seen(self):
        c = self.client()
        c.sub3()
        os.makedirs(self.srv.path("x/y/z"))
        with open(self.srv.path("x/y/z/f.txt"), "wb") as f:
            f.write(b"hello")
        got = self.events_until(c, lambda e: e.name == "x/y/z/f.txt" and
                                e.size == 5)
        folders = [e.name for e in got if e.etype == FOLDER]
        self.assertEqual(folders, ["x", "x/y", "x/y/z"])
        self.assertEqual(c.get("x/y/z/f.txt"), b"hello")
        # A file made later in the deep folder is seen by its watch.
        with open(self.srv.path("x/y/z/g.txt"), "wb") as f:
            f.write(b"g")
        self.events_until(c, lambda e: e.name == "x/y/z/g.txt")
        shutil.rmtree(self.srv.path("x"))
        self.events_until(c, lambda e: e.name == "x" and e.kind == REMOVED)
        self.assertEqual(c.ls("", LIST_RECURSIVE), [])


class ConsistencyTest(TreeTest):
    """Four clients change one small tree at once (uploads with PARENTS,
    renames of files and folders, recursive deletes, mkdir -p); then the
    events a subscriber saw from the start, the LIST of the tree and the
    disk all tell the same tree. The rescan is far away: the register
    must follow from fsd's own changes and its watches."""

    def setUp(self):
        self.srv = fsdrun.Fsd(env={"FSD_RESCAN_MS": "600000"}).start()
        self.outside = tempfile.mkdtemp(prefix="fsd-outside-")
        with open(os.path.join(self.outside, "secret"), "wb") as f:
            f.write(b"keep me")

    def work(self, seed, errors):
        import random
        r = random.Random(seed)
        c = Tree(self.srv.port)
        try:
            for _ in range(150):
                a, b = "d%d" % r.randrange(4), "e%d" % r.randrange(3)
                f = "%s/%s/f%d" % (a, b, r.randrange(5))
                to = "d%d/e%d" % (r.randrange(4), r.randrange(3))
                steps = (lambda: c.put3(f, b"x" * r.randrange(9), PARENTS),
                         lambda: c.rename("%s/%s" % (a, b), to),
                         lambda: c.rm(a, DELETE_RECURSIVE),
                         lambda: c.mkdir(a + "/" + b + "/g", MKDIR_PARENTS),
                         lambda: c.rename(f, "%s/f%d" % (a, r.randrange(5))),
                         lambda: c.rm(f))
                try:
                    steps[r.randrange(len(steps))]()
                except fc.FspError:
                    pass  # the tree changed under this client: fine
        except Exception as e:  # noqa: BLE001 (reported by the test)
            errors.append(repr(e))
        finally:
            c.close()

    def test_events_list_and_disk_agree(self):
        sub = self.client()
        sub.sub3()
        errors = []
        ts = [threading.Thread(target=self.work, args=(i, errors))
              for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        time.sleep(0.5)  # what the watches report of our own changes
        c = self.client()
        c.put3("zz-marker", b"m")
        seen = {}
        while True:
            e = sub.next_event()
            self.assertEqual(e.type, "EVENT")
            if e.kind in (ADDED, REPLACED):
                seen[e.name] = e.etype
            elif e.kind == REMOVED:
                seen.pop(e.name, None)
            else:
                for k in [k for k in seen
                          if k == e.frm or k.startswith(e.frm + "/")]:
                    seen[e.name + k[len(e.frm):]] = seen.pop(k)
            if e.name == "zz-marker":
                break
        listed = {e[0]: e[1] for e in c.ls("", LIST_RECURSIVE)}
        disk = {}
        for dp, dn, fn in os.walk(self.srv.root):
            rel = os.path.relpath(dp, self.srv.root)
            for d in dn:
                disk[os.path.normpath(os.path.join(rel, d))] = FOLDER
            for f in fn:
                if not f.startswith("."):
                    disk[os.path.normpath(os.path.join(rel, f))] = FILE
        self.assertEqual(listed, disk)
        self.assertEqual(seen, disk)


def inotify_watches(pid):
    """The inotify watches process pid holds (from /proc/PID/fdinfo)."""
    n = 0
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                n += sum(1 for line in f if line.startswith("inotify wd:"))
        except OSError:
            pass
    return n


class WatchTest(TreeTest):
    def wait_watches(self, n):
        deadline = time.time() + EVENT_WAIT
        while time.time() < deadline and \
                inotify_watches(self.srv.proc.pid) != n:
            time.sleep(0.05)
        return inotify_watches(self.srv.proc.pid)

    def test_one_watch_per_folder_dropped_with_it(self):
        c = self.client()
        base = self.wait_watches(1)  # the root
        self.assertEqual(base, 1)
        c.mkdir("p/q/r", MKDIR_PARENTS)
        self.assertEqual(self.wait_watches(4), 4)
        c.rm("p/q", DELETE_RECURSIVE)
        self.assertEqual(self.wait_watches(2), 2)
        os.makedirs(self.srv.path("ext/sub"))
        self.assertEqual(self.wait_watches(4), 4)
        shutil.rmtree(self.srv.path("ext"))
        self.assertEqual(self.wait_watches(2), 2)

    def test_watches_follow_a_renamed_folder(self):
        c = self.client()
        c.mkdir("a/b", MKDIR_PARENTS)
        c.rename("a", "z")
        c.sub3()
        # Made by another program: seen at once by the moved folder's
        # watch (the rescan is 10 s away).
        with open(self.srv.path("z/b/late.txt"), "wb") as f:
            f.write(b"late")
        self.events_until(c, lambda e: e.name == "z/b/late.txt" and
                          e.size == 4)


class WatchLimitTest(TreeTest):
    """The kernel's limit of inotify watches reached after one folder
    (FSD_MAX_WATCHES): one line says so, and the rescan (every 300 ms
    here) finds what happens in folders without a watch."""

    def setUp(self):
        self.srv = fsdrun.Fsd(env={"FSD_MAX_WATCHES": "1",
                                   "FSD_RESCAN_MS": "300"}).start()
        self.outside = tempfile.mkdtemp(prefix="fsd-outside-")
        with open(os.path.join(self.outside, "secret"), "wb") as f:
            f.write(b"keep me")

    def test_rescan_carries_folders_beyond_the_limit(self):
        c = self.client()
        c.sub3()
        for d in ("one", "two", "three"):
            c.mkdir(d)
        for d in ("one", "two", "three"):
            with open(self.srv.path(d + "/f.txt"), "wb") as f:
                f.write(d.encode())
        want = {"one/f.txt", "two/f.txt", "three/f.txt"}
        seen = set()
        # In any order: one by its watch, the others by the rescan.
        self.events_until(c, lambda e: (seen.add(e.name), want <= seen)[1])
        self.assertEqual(c.get("three/f.txt"), b"three")
        limit = [l for l in self.srv.log if "inotify watches" in l]
        self.assertEqual(len(limit), 1, limit)


class ReadOnlyTest(TreeTest):
    args = ("--read-only",)

    def test_changes_are_read_only(self):
        os.makedirs(self.srv.path("a/b"))
        with open(self.srv.path("a/f"), "wb") as f:
            f.write(b"f")
        c = self.client()
        # The register learns of them through the watcher.
        deadline = time.time() + EVENT_WAIT
        while time.time() < deadline and len(c.ls("", LIST_RECURSIVE)) < 3:
            time.sleep(0.05)
        self.assertEqual(len(c.ls("", LIST_RECURSIVE)), 3)
        for op, payload in ((MKDIR, b"\x01x/y"),
                            (RENAME, struct.pack(">BH", 0, 3) + b"a/fa/g"),
                            (fc.DELETE, b"\x01a"),
                            (fc.PUT, struct.pack(">QB", 1, PARENTS) + b"n/x")):
            self.assertEqual(c.status_of(op, payload), fc.ST_READ_ONLY,
                             fc.OP_NAMES.get(op, op))
        self.assertTrue(os.path.exists(self.srv.path("a/f")))
        self.assertFalse(os.path.exists(self.srv.path("x")))


class RightsTest(ta.AuthServer):
    """alice: all rights, bob: read, carol: write (ta.AuthServer)."""

    def login3(self, user):
        c = Tree(self.srv.port, hello=False)
        self.addCleanup(c.close)
        server = c.hello(version=3)
        self.assertTrue(server["caps"] & ta.CAP_AUTH)
        op, _, snonce = c.read_frame()
        self.assertEqual(op, ta.CHALLENGE)
        c.send(ta.AUTH, 0, ta.auth_payload(self.keys[user], user, snonce))
        op, rid, _ = c.read_frame()
        self.assertEqual((op, rid), (fc.OK, 0))
        return c

    def st(self, c, op, payload):
        return c.status_of(op, payload)

    def test_rights_apply_to_every_new_operation(self):
        alice, bob, carol = (self.login3(u) for u in ("alice", "bob", "carol"))
        alice.put3("r/file.txt", b"f", PARENTS)
        alice.mkdir("r/empty")
        forbidden = ta.FORBIDDEN
        # bob reads, and nothing else.
        self.assertEqual(self.st(bob, MKDIR, b"\x01r/b"), forbidden)
        self.assertEqual(self.st(bob, RENAME, struct.pack(">BH", 0, 10) +
                                 b"r/file.txtr/g.txt"), forbidden)
        self.assertEqual(self.st(bob, fc.DELETE, b"\x01r"), forbidden)
        self.assertEqual(self.st(bob, fc.PUT, struct.pack(">QB", 1, PARENTS) +
                                 b"n/x"), forbidden)
        self.assertEqual([e[0] for e in bob.ls("r")].count("file.txt"), 1)
        self.assertEqual(bob.stat3("r")[2], FOLDER)
        # carol writes: MKDIR and PUT with PARENTS, but no RENAME (it
        # deletes the old name) and no DELETE of a folder.
        carol.mkdir("c/d", MKDIR_PARENTS)
        carol.put3("c/e/f.txt", b"c", PARENTS)
        self.assertEqual(self.st(carol, RENAME, struct.pack(">BH", 0, 10) +
                                 b"r/file.txtr/g.txt"), forbidden)
        self.assertEqual(self.st(carol, fc.DELETE, b"\x00r/empty"), forbidden)
        self.assertEqual(self.st(carol, fc.LIST, b"\x00"), forbidden)
        # Nothing changed for the refusals.
        self.assertTrue(os.path.exists(self.srv.path("r/file.txt")))
        self.assertTrue(os.path.isdir(self.srv.path("r/empty")))
        self.assertFalse(os.path.exists(self.srv.path("r/b")))
        self.assertFalse(os.path.exists(self.srv.path("n")))
        alice.rename("r/file.txt", "r/g.txt")
        alice.rm("r", DELETE_RECURSIVE)
        self.assertFalse(os.path.exists(self.srv.path("r")))


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--fsd" in args:
        i = args.index("--fsd")
        fsdrun.FSD = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)
