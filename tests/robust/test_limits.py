#!/usr/bin/env python3
"""Limits that hold under abuse: nothing a client does can pin fsd's memory,
disk or sockets beyond the documented bounds.

- downloads nobody reads share one bounded budget per connection, whatever
  the number of requests;
- a transfer that moves no byte for the idle timeout is released (its file,
  temp file and reservation with it); a slow reader that keeps reading is
  not;
- the sizes uploads announce never reserve disk space below --min-free:
  such a PUT answers NO_SPACE at once;
- --max-clients-per-ip N: the next connection from that address gets ERROR
  LIMIT and is closed;
- the bytes uploads hold in memory while the disk catches up are bounded per
  connection, whatever the number of uploads in flight.

The memory checks read fsd's VmRSS, VmHWM and VmData from /proc/PID/status:
a measurement used as the assertion of a bound, never a timing."""

import os
import shutil
import socket
import struct
import subprocess
import threading
import time

from fsptest import (OP, ST, FsdCase, FspError, frame, main, p_put, p_range,
                     raise_nofile, slow_factor)

TO_END = 2**64 - 1
MIB = 1 << 20
GIB = 1 << 30


def proc_status_kb(pid, key):
    """A "Key:   N kB" line of /proc/PID/status, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid):
    """Resets VmHWM to the current RSS (Linux clear_refs 5); False when not
    allowed, and the peak is then sampled instead."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def temp_names(root):
    return sorted(n for n in os.listdir(root) if n.startswith(".fsd-tmp-"))


def mount_tmpfs(path, size):
    """Mounts a tmpfs of size bytes on path; returns an error text or None."""
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size,
                        "fsd-limits", path], capture_output=True)
    if r.returncode != 0:
        return "mount failed: %s" % r.stderr.decode().strip()
    return None


def listed(c, name):
    """The size LIST gives for name, or None."""
    return c.list().get(name.encode(), (None,))[0]


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class MemoryCase(FsdCase):
    """Downloads and uploads that hold memory. Runs alone (the meson test is
    not parallel): it measures fsd's memory."""

    conns = 100
    gets = 64
    fsd_args = ["--max-clients", "2000", "--max-clients-per-ip", "2000"]

    def peak_above(self, base_kb, settle):
        """Peak RSS above base_kb while the server settles for settle
        seconds: VmHWM when it could be reset, else sampled VmRSS."""
        peak = 0
        deadline = time.monotonic() + settle * slow_factor()
        while time.monotonic() < deadline:
            peak = max(peak, self.fsd.rss_kb())
            time.sleep(0.05)
        if self.hwm_reset:
            peak = max(peak, proc_status_kb(self.fsd.pid, "VmHWM"))
        return peak - base_kb

    def test_limits_unread_gets_memory(self):
        # 100 connections, each with 64 GETs of a 16 MiB file in flight and
        # never reading: each GET used to hold its own 256 KiB chunk (1.6
        # GiB in all). The connection's transfers share one bounded budget.
        raise_nofile(self.conns * 2 + 200)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(os.urandom(16 * MIB))
        c = self.fsd.connect()
        self.wait_for(lambda: listed(c, "big.bin") == 16 * MIB, 5,
                      "fsd to see big.bin")
        c.close()
        time.sleep(0.5)
        base = self.fsd.rss_kb()
        self.hwm_reset = reset_peak(self.fsd.pid)
        socks = []
        many = b"".join(frame(OP["GET"], i + 1, p_range(0, TO_END, "big.bin"))
                        for i in range(self.gets))
        for _ in range(self.conns):
            k = self.fsd.connect(rcvbuf=4096)
            k.send(many)
            socks.append(k)
        grew = self.peak_above(base, 4)
        bound = (256 if slow_factor() > 1 else 64) * 1024
        print("unread GETs: %d x %d, fsd peak RSS %d KiB above idle (%d)" %
              (self.conns, self.gets, grew, base))
        self.assertLess(grew, bound, "unread downloads pin memory: peak RSS "
                        "%d KiB above idle" % grew)
        # Still serving others while they sit there.
        self.assert_serving()
        for k in socks:
            k.abort()

    def test_limits_upload_buffers_per_connection(self):
        # The disk lags (every threadpool thread is busy hashing a huge
        # sparse file for another client), and each of 12 connections feeds
        # its 64 open uploads one small DATA frame per read. Every such
        # frame used to pin a 256 KiB read buffer until its disk write: 16
        # MiB per connection for 64 * 13 bytes of data. The buffers a
        # connection's uploads hold are bounded whatever their number.
        nconn, nput = 12, 64
        raise_nofile(nconn * (nput + 4) + 200)
        with open(os.path.join(self.root, "sparse.bin"), "wb") as f:
            f.truncate(1 << 40)
        ups = []
        k = self.fsd.connect()
        k.put("probe.bin", b"p" * 1000)
        k.stat("sparse.bin")
        k.close()
        for i in range(nconn):
            c = self.fsd.connect()
            ids = [c.request(OP["PUT"], p_put(1 * MIB, 0, "u%d-%d" % (i, j)))
                   for j in range(nput)]
            for rid in ids:
                self.assertEqual(c.next_frame_for(rid).op, OP["READY"])
            ups.append((c, ids))
        time.sleep(0.5)
        base_rss = self.fsd.rss_kb()
        base_data = proc_status_kb(self.fsd.pid, "VmData")
        # Occupy the threadpool (fsd runs 8 threads) until this connection
        # goes; hash_work stops between chunks once it is aborted.
        stall = self.fsd.connect()
        for i in range(8):
            stall.request(OP["HASH"], p_range(0, TO_END, "sparse.bin"))
        stall.ping()  # the HASH jobs are queued
        probe = self.fsd.connect()
        rid = probe.request(OP["GET"], p_range(0, TO_END, "probe.bin"))
        try:
            f = probe.next_frame_for(rid, timeout=1.0)
            self.fail("the threadpool is not busy: %r %r" % (f, stall.poll_frames()))
        except socket.timeout:
            pass
        try:
            for c, ids in ups:
                for rid in ids:
                    try:
                        c.send_frame(OP["DATA"], rid, b"x")
                    except OSError:
                        break  # fsd stopped reading: that is the bound
                    time.sleep(0.002)
            time.sleep(1.0)
            rss = self.fsd.rss_kb() - base_rss
            data = proc_status_kb(self.fsd.pid, "VmData") - base_data
        finally:
            stall.abort()
        per_conn = 8 * 1024 * slow_factor()
        print("upload buffers: %d connections x %d uploads, fsd RSS +%d "
              "KiB, VmData +%d KiB" % (nconn, nput, rss, data))
        self.assertLess(rss, nconn * per_conn)
        self.assertLess(data, nconn * per_conn,
                        "uploads' buffers are not bounded per connection")
        for c, _ in ups:
            c.abort()
        probe.abort()
        self.wait_for(lambda: temp_names(self.root) == [], 20,
                      "the dropped uploads' temp files to go")
        self.assert_serving()


class IdleTransferCase(FsdCase):
    timeout = 2
    fsd_args = ["--idle-timeout", str(timeout)]

    def setUp(self):
        super().setUp()
        self.big = os.urandom(16 * MIB)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(self.big)
        c = self.fsd.connect()
        self.wait_for(lambda: listed(c, "big.bin") == len(self.big), 5,
                      "fsd to see big.bin")
        c.close()
        self.wait_for(lambda: self.fsd.fd_count() == self.fsd.base_fds, 5,
                      "the first client to go")

    def bound(self):
        """Seconds within which a stalled transfer must be released: twice
        the idle timeout, twice again as a margin for a loaded machine (the
        figure in the README is measured, not asserted here)."""
        return 4 * self.timeout

    def test_limits_zero_reader_get_released(self):
        # A GET whose client never reads: the socket fills, nothing moves,
        # and the transfer (its open file, its buffers, the connection) is
        # released after the idle timeout, even while the client pings.
        k = self.fsd.connect(rcvbuf=4096)
        k.request(OP["GET"], p_range(0, TO_END, "big.bin"))
        self.wait_for(lambda: "/big.bin" in " ".join(self.fsd.fd_targets()),
                      5, "the GET to open its file")
        self.wait_for(lambda: "/big.bin" not in
                      " ".join(self.fsd.fd_targets()), self.bound(),
                      "the unread GET to be released")
        self.wait_for(lambda: self.fsd.fd_count() == self.fsd.base_fds, 5,
                      "the unread GET's connection to be closed")
        # What was queued before the close may still be read; then EOF.
        with self.assertRaises(Exception):
            while True:
                k.recv_frame(timeout=5 * slow_factor())
        self.assert_serving()

    def test_limits_zero_reader_get_released_despite_pings(self):
        k = self.fsd.connect(rcvbuf=4096)
        k.request(OP["GET"], p_range(0, TO_END, "big.bin"))
        self.wait_for(lambda: "/big.bin" in " ".join(self.fsd.fd_targets()),
                      5, "the GET to open its file")
        end = time.monotonic() + self.bound() * slow_factor()
        released = False
        while time.monotonic() < end:
            try:
                k.send_frame(OP["PING"], 99, b"p")
            except OSError:
                pass
            if "/big.bin" not in " ".join(self.fsd.fd_targets()):
                released = True
                break
            time.sleep(0.5)
        self.assertTrue(released, "an unread GET is kept alive by PINGs")
        self.assert_serving()

    def test_limits_slow_reader_kept(self):
        # A reader taking 64 KiB every 0.3 s for three idle timeouts is slow
        # but moves bytes: it is not idle, and gets the file whole.
        k = self.fsd.connect(rcvbuf=65536)
        rid = k.request(OP["GET"], p_range(0, TO_END, "big.bin"))
        end = time.monotonic() + 3 * self.timeout
        while time.monotonic() < end:
            got = k.sock.recv(65536)
            self.assertTrue(got, "the slow reader was dropped")
            k.buf += got
            time.sleep(0.3)
        k.sock.settimeout(30 * slow_factor())
        _, data = k.finish_get(rid, timeout=60 * slow_factor())
        self.assertEqual(data, self.big)

    def test_limits_stalled_put_released(self):
        # An upload whose client stops sending: its temp file goes at the
        # idle timeout, with an ERROR TIMEOUT, even on a connection kept
        # busy with PINGs; the connection itself may stay.
        k = self.fsd.connect()
        rid = k.request(OP["PUT"], p_put(8 * MIB, 0, "stalled.bin"))
        self.assertEqual(k.next_frame_for(rid).op, OP["READY"])
        k.send_frame(OP["DATA"], rid, os.urandom(MIB // 2))
        k.ping()
        self.assertEqual(len(temp_names(self.root)), 1)
        end = time.monotonic() + self.bound() * slow_factor()
        err = None
        while time.monotonic() < end and temp_names(self.root):
            try:
                k.ping()
            except Exception:
                break
            if k.other.get(rid) or k.events:
                err = (k.other.get(rid) or k.events)[-1]
            time.sleep(0.5)
        self.assertEqual(temp_names(self.root), [],
                         "a stalled upload keeps its temp file")
        if err is None:
            frames = k.poll_frames()
            for f in frames:
                if f.op == OP["ERROR"]:
                    err = f
        if err is not None:
            self.assertEqual(err.op, OP["ERROR"])
            self.assertEqual(err.status()[0], ST["TIMEOUT"], err)
        self.assertNotIn(b"stalled.bin", self.fsd.connect().list())
        self.assert_serving()

    def test_limits_stalled_put_silent_client_released(self):
        # The same with a client that sends nothing at all afterwards.
        k = self.fsd.connect()
        rid = k.request(OP["PUT"], p_put(8 * MIB, 0, "stalled.bin"))
        self.assertEqual(k.next_frame_for(rid).op, OP["READY"])
        k.send_frame(OP["DATA"], rid, os.urandom(MIB // 2))
        self.wait_for(lambda: temp_names(self.root) == [], self.bound(),
                      "the stalled upload's temp file to go")
        self.assert_serving()


class ReserveBase:
    """The sizes uploads announce reserve disk space; together they never
    take free space below --min-free."""

    def open_put(self, c, size, name):
        """Sends PUT; returns (id, first frame for it)."""
        rid = c.request(OP["PUT"], p_put(size, 0, name))
        return rid, c.next_frame_for(rid)

    def assert_no_space(self, f):
        self.assertEqual(f.op, OP["ERROR"], "expected NO_SPACE, got %r" % f)
        st, msg = f.status()
        self.assertEqual(st, ST["NO_SPACE"], f)
        self.assertTrue(msg)


class TmpfsReserveCase(ReserveBase, FsdCase):
    start_fsd = False
    size = 64 * MIB
    min_free = 16 * MIB

    def setUp(self):
        super().setUp()
        why = mount_tmpfs(self.root, self.size)
        if why:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.skipTest(why)
        self.mounted = True

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if getattr(self, "mounted", False):
                subprocess.run(["umount", "-l", self.root])
                shutil.rmtree(self.tmp, ignore_errors=True)

    def test_limits_reserve_min_free(self):
        self.fsd = self.spawn(args=["--min-free", "16M"])
        c = self.fsd.connect()
        # 20 GiB: refused at once, before any temp file exists.
        rid, f = self.open_put(c, 20 * GIB, "huge.bin")
        self.assert_no_space(f)
        self.assertEqual(temp_names(self.root), [])
        # 40 MiB of 64 leaves 24 free: accepted, and held with no data.
        a = self.fsd.connect()
        ra, f = self.open_put(a, 40 * MIB, "a.bin")
        self.assertEqual(f.op, OP["READY"], f)
        # 20 MiB more would leave 4 MiB, below --min-free: refused although
        # the disk still has room for it.
        rid, f = self.open_put(c, 20 * MIB, "b.bin")
        self.assert_no_space(f)
        self.assertGreaterEqual(free_bytes(self.root), self.min_free)
        # 8 MiB fits within the rest, and is stored whole.
        data = os.urandom(8 * MIB)
        c.put("c.bin", data)
        self.assertEqual(c.get("c.bin")[1], data)
        self.assertGreaterEqual(free_bytes(self.root), self.min_free)
        # Four announced 20 GiB uploads fill nothing.
        for i in range(4):
            rid, f = self.open_put(c, 20 * GIB, "h%d.bin" % i)
            self.assert_no_space(f)
        # The held upload goes: its reservation is returned.
        a.abort()
        self.wait_for(lambda: temp_names(self.root) == [], 5,
                      "the dropped upload's temp file to go")
        data = os.urandom(20 * MIB)
        c.put("b.bin", data)
        self.assertEqual(c.get("b.bin")[1], data)
        self.assertGreaterEqual(free_bytes(self.root), self.min_free)

    def test_limits_reserve_in_flight_never_past_min_free(self):
        # Many uploads announced at once, none sending: the sum accepted
        # stays within free space minus --min-free, and the disk's free
        # space never drops below it.
        self.fsd = self.spawn(args=["--min-free", "16M"])
        conns = [self.fsd.connect() for _ in range(4)]
        accepted = 0
        ids = []
        for i in range(32):
            c = conns[i % 4]
            rid = c.request(OP["PUT"], p_put(3 * MIB, 0, "p%d.bin" % i))
            ids.append((c, rid))
        for c, rid in ids:
            f = c.next_frame_for(rid)
            if f.op == OP["READY"]:
                accepted += 1
            else:
                self.assert_no_space(f)
            self.assertGreaterEqual(free_bytes(self.root), self.min_free)
        self.assertGreater(accepted, 0)
        self.assertLessEqual(accepted * 3 * MIB, self.size - self.min_free)
        # Each accepted upload can really be written to its end.
        for c, rid in ids:
            if rid in c.inflight:
                data = os.urandom(3 * MIB)
                for pos in range(0, len(data), 1 << 20):
                    c.send_frame(OP["DATA"], rid, data[pos:pos + (1 << 20)])
                self.assertGreaterEqual(free_bytes(self.root),
                                        self.min_free - MIB)
        for c in conns:
            c.abort()
        self.wait_for(lambda: temp_names(self.root) == [], 5,
                      "the dropped uploads' temp files to go")

    def test_limits_reserve_default_min_free(self):
        # Without --min-free fsd keeps 256 MiB (or 1% of the file system,
        # if more) free: on a 64 MiB file system no upload fits.
        self.fsd = self.spawn(args=[])
        c = self.fsd.connect()
        rid, f = self.open_put(c, 1000, "small.bin")
        self.assert_no_space(f)
        self.assertIn("free", f.status()[1])


class RealFsReserveCase(ReserveBase, FsdCase):
    """Where no tmpfs can be mounted: --min-free just under the real file
    system's free space, so that nothing large is ever reserved."""

    start_fsd = False

    def test_limits_reserve_real_fs(self):
        free = free_bytes(self.root)
        if free < 4 * GIB:
            self.skipTest("less than 4 GiB free")
        keep = free - 1 * GIB
        self.fsd = self.spawn(args=["--min-free", str(keep)])
        c = self.fsd.connect()
        rid, f = self.open_put(c, 20 * GIB, "huge.bin")
        self.assert_no_space(f)
        self.assertEqual(temp_names(self.root), [])
        rid, f = self.open_put(c, 600 * MIB, "a.bin")
        self.assertEqual(f.op, OP["READY"], f)
        rid2, f = self.open_put(c, 600 * MIB, "b.bin")
        self.assert_no_space(f)
        c.abort()
        self.wait_for(lambda: temp_names(self.root) == [], 5,
                      "the dropped upload's temp file to go")

    def test_limits_min_free_bad_values(self):
        for bad in ("x", "-1", "12X", "1.5G", "", "99999999999999999999T"):
            r = subprocess.run([self.fsd_exe(), "--root", self.root,
                                "--min-free", bad], capture_output=True,
                               timeout=10)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn(b"--min-free", r.stderr)
        for bad in ("x", "0", "-3"):
            r = subprocess.run([self.fsd_exe(), "--root", self.root,
                                "--max-clients-per-ip", bad],
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 2, bad)
        r = subprocess.run([self.fsd_exe(), "--help"], capture_output=True,
                           timeout=10)
        for opt in (b"--min-free", b"--max-clients-per-ip"):
            self.assertIn(opt, r.stdout)

    def fsd_exe(self):
        from fsptest import CONFIG
        return CONFIG["fsd"]


class PerIpCase(FsdCase):
    fsd_args = ["--max-clients-per-ip", "3"]

    def test_limits_max_clients_per_ip(self):
        held = [self.fsd.connect() for _ in range(3)]
        for k in held:
            k.ping()
        extra = self.fsd.connect(hello=False)
        extra.send(frame(OP["HELLO"], 0, struct.pack(">HHIIQ", 1, 0, 1 << 20,
                                                     0, 0)))
        frames = extra.read_until_closed(10 * slow_factor())
        errs = [f for f in frames if f.op == OP["ERROR"]]
        self.assertTrue(errs, "closed without an ERROR: %r" % frames)
        st, msg = errs[0].status()
        self.assertEqual(errs[0].id, 0)
        self.assertEqual(st, ST["LIMIT"])
        self.assertIn("address", msg)
        # The three held connections still work; once one goes, a new one
        # from the same address gets in.
        for k in held:
            k.ping()
        held[0].close()
        time.sleep(0.2)

        def gets_in():
            try:
                k = self.fsd.connect()
                k.ping()
                held.append(k)
                return True
            except (FspError, OSError, Exception):
                return False
        self.wait_for(gets_in, 5, "a connection to get in again")

    def test_limits_per_ip_counts_each_address(self):
        # Another loopback address is another client.
        held = [self.fsd.connect() for _ in range(3)]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.2", 0))
        except OSError:
            self.skipTest("cannot bind 127.0.0.2")
        s.settimeout(10)
        s.connect(self.fsd.addr)
        s.sendall(frame(OP["HELLO"], 0, struct.pack(">HHIIQ", 1, 0, 1 << 20,
                                                    0, 0)))
        hdr = s.recv(12)
        self.assertEqual(hdr[2], OP["HELLO"], hdr)
        s.close()
        for k in held:
            k.ping()


if __name__ == "__main__":
    main()
