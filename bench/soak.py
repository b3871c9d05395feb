#!/usr/bin/env python3
"""Soak: pdqmatch serve under mixed load on loopback: a warm-up, then 10 minutes measured.

A store of N random hashes (default 1,000,000) plus samples/ is served;
client threads then run, all at once and without pause, the lookups in one
process and the adds in another:

  4 x GET /v1/lookup?hash=       random stored hashes, some flipped
  1 x POST /v1/lookup/media      the sample JPEGs in turn
  2 x POST /v1/banks/soak/hashes batches of 10 new items of 10 hashes,
                                 each followed by DELETEs of the items
                                 added 50 batches before: the store keeps
                                 its size

Every 30 s it prints the window's requests, errors, p50/p99 latency, the
server's heap (anonymous resident memory), the hashes added so far, the
hashes pending (added but not yet indexed), the memory of the server's
lookup copy of the hashes, the resident pages of the mapped store file and
the file's size.

Warm-up ends at the first window after both the first minute and the first
indexing pass: until a pass has run, the server's memory is still growing to
its working size by design (the in-memory index of pending hashes fills up
to the pass window, and LMDB keeps the pages of its largest write
transaction for reuse).  The load then runs 10 more minutes (--minutes), the
part measured.  A run with no pass in its first 20 minutes fails: it never
reaches the state it is meant to measure.

It fails (exit 1) on any error (non-2xx, socket) at any time, on the heap
growing more than 10% from the end of the warm-up to the end, on the store
file growing more than 10% over the second half of the measured part, less
the records array's own growth (its size must level off while the live
hashes stay as many: but a hash's record is written once and its id never
reused, so every hash added takes RECORD_BYTES of the file for good, deleted
or not; that part is shown apart), or on an unstable
p99 (the last window's over twice the first post-warm-up window's).  The
mapped file's resident pages are shown but not judged: they are page cache,
bounded by the file.  `make soak`
runs it; it is not part of CI.
"""
import argparse
import multiprocessing
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 30.0
# What a hash added takes of the store file for good: its record in the
# records array (index/store_int.h: written once, never changed, its id
# never reused).
RECORD_BYTES = 36


def listen_port(serve_log, proc, timeout=60):
    """The port a `serve --log-file serve_log` listens on, from its start-up
    record."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if serve_log.exists():
            m = re.search(r"listen=127\.0\.0\.1:(\d+)", serve_log.read_text())
            if m:
                return m.group(1)
        if proc.poll() is not None:
            raise RuntimeError("pdqmatch serve ended: " + proc.stderr.read())
        time.sleep(0.05)
    raise RuntimeError("pdqmatch serve did not start")


def rss_mib(pid):
    """(anonymous, file-backed) resident MiB of pid: the heap and stacks,
    and the pages of the mapped store file (page cache the kernel may take
    back, bounded by the file's size)."""
    got = {}
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(("RssAnon:", "RssFile:")):
            got[line.split(":")[0]] = int(line.split()[1]) / 1024
    return got.get("RssAnon", 0.0), got.get("RssFile", 0.0)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = []          # this window's latencies, seconds
        self.errors = 0
        self.total = 0
        self.total_errors = 0
        self.added = 0         # hashes added

    def record(self, seconds, ok):
        with self.lock:
            self.lat.append(seconds)
            self.total += 1
            if not ok:
                self.errors += 1
                self.total_errors += 1

    def take(self):
        with self.lock:
            lat, errors = self.lat, self.errors
            self.lat, self.errors = [], 0
        return sorted(lat), errors


def timed(stats, session, method, url, **kw):
    start = time.monotonic()
    try:
        r = session.request(method, url, timeout=30, **kw)
        ok = 200 <= r.status_code < 300
    except requests.RequestException:
        ok = False
    stats.record(time.monotonic() - start, ok)


def lookups(stats, stop, url, stored, jpegs):
    """4 threads of lookups by hash, 1 of media lookups."""
    def looker(seed):
        s, r = requests.Session(), random.Random(seed)
        while not stop.is_set():
            h = stored[r.randrange(len(stored))]
            if r.random() < 0.5:   # a near-duplicate: a few bits off
                h = "%064x" % (int(h, 16) ^ (1 << r.randrange(256)) ^ (1 << r.randrange(256)))
            timed(stats, s, "GET", url + "/v1/lookup", params={"hash": h})

    def media():
        s, i = requests.Session(), 0
        while not stop.is_set():
            timed(stats, s, "POST", url + "/v1/lookup/media", data=jpegs[i % len(jpegs)],
                  headers={"Content-Type": "image/jpeg"})
            i += 1

    return [threading.Thread(target=looker, args=(i,)) for i in range(4)] + \
        [threading.Thread(target=media)]


def adds(stats, stop, url):
    """2 threads adding batches of 10 content items of 10 hashes each (as
    a video's frames are), each deleting the batch from 50 before."""
    def adder(c):
        s, r, b = requests.Session(), random.Random(100 + c), 0
        while not stop.is_set():
            items = [{"hash": "%064x" % r.getrandbits(256), "content_id": f"c{c}-b{b}-{i}"}
                     for i in range(10) for _ in range(10)]
            timed(stats, s, "POST", url + "/v1/banks/soak/hashes", json={"items": items})
            with stats.lock:
                stats.added += len(items)
            if b >= 50:
                for i in range(10):
                    timed(stats, s, "DELETE", url + f"/v1/banks/soak/content/c{c}-b{b - 50}-{i}")
            b += 1

    return [threading.Thread(target=adder, args=(c,)) for c in range(2)]


class Client:
    """A process running the threads that make(stats, stop, *args) returns,
    answering the main process's "take" (this window's figures) and "stop"
    (the totals) over a pipe."""

    def __init__(self, make, *args):
        self.conn, child = multiprocessing.Pipe()
        self.proc = multiprocessing.Process(target=Client.run, args=(child, make, args))
        self.proc.start()

    @staticmethod
    def run(conn, make, args):
        stats, stop = Stats(), threading.Event()
        threads = make(stats, stop, *args)
        for t in threads:
            t.start()
        while True:
            msg = conn.recv()
            if msg == "take":
                lat, errors = stats.take()
                conn.send((lat, errors, stats.added))
            else:
                stop.set()
                for t in threads:
                    t.join(timeout=60)
                conn.send((stats.total, stats.total_errors, stats.added))
                return

    @staticmethod
    def take_all(clients):
        lat, errors, added = [], 0, 0
        for c in clients:
            c.conn.send("take")
        for c in clients:
            l, e, a = c.conn.recv()
            lat += l
            errors += e
            added += a
        return sorted(lat), errors, added

    @staticmethod
    def stop_all(clients):
        for c in clients:
            c.conn.send("stop")
        totals = [c.conn.recv() for c in clients]
        for c in clients:
            c.proc.join(timeout=60)
        return tuple(sum(t[i] for t in totals) for i in range(3))


def pct(sorted_lat, p):
    if not sorted_lat:
        return 0.0
    return sorted_lat[min(len(sorted_lat) - 1, int(p / 100 * len(sorted_lat)))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--minutes", type=float, default=10, help="measured, after the warm-up")
    ap.add_argument("--warmup", type=float, default=1, help="at least this long")
    ap.add_argument("--max-warmup", type=float, default=20)
    a = ap.parse_args()
    binary = str((ROOT / a.build / "pdqmatch").resolve())
    work = Path(tempfile.mkdtemp(prefix="pdqm-soak-"))
    db = work / "s.db"
    rng = random.Random(1)
    stored = ["%064x" % rng.getrandbits(256) for _ in range(a.n)]
    (work / "list.txt").write_text("\n".join(stored) + "\n")
    print(f"soak: indexing {a.n} hashes and samples/ into {db}", file=sys.stderr)
    subprocess.run([binary, "index", "-q", "--db", db, "--bank", "base", "--hash-list",
                    work / "list.txt"], check=True)
    subprocess.run([binary, "index", "-q", "--db", db, "--bank", "photos", ROOT / "samples"],
                   check=True)
    subprocess.run([binary, "banks", "create", "soak", "--db", db], check=True)
    jpegs = [p.read_bytes() for p in sorted((ROOT / "samples").glob("*.jpg"))]

    # The access log on, as in production: to a file (a record a request
    # would fill a pipe nobody reads).
    serve_log = work / "serve.log"
    proc = subprocess.Popen([binary, "serve", "--db", str(db), "--listen", "127.0.0.1:0",
                             "--log-file", str(serve_log)], stderr=subprocess.PIPE, text=True)
    port = listen_port(serve_log, proc)
    url = f"http://127.0.0.1:{port}"
    # Lookups and adds run in two processes of their own: in one, Python's
    # lock would let the lookups starve the adds (about 13,000 hashes a
    # minute), and the first indexing pass would come late.
    clients = [Client(lookups, url, stored, jpegs), Client(adds, url)]
    start = time.monotonic()
    rows = []
    print(f"{'minute':>7}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'heap MiB':>9}"
          f"{'added':>9}{'pending':>9}{'copy MiB':>9}{'map MiB':>9}{'file MiB':>9}")
    warm = None   # index of the first measured window
    try:
        while True:
            if warm is None and time.monotonic() - start > a.max_warmup * 60:
                break
            if warm is not None and rows[-1][0] - rows[warm][0] >= a.minutes - 1e-9:
                break
            time.sleep(WINDOW)
            lat, errors, added = Client.take_all(clients)
            # A new connection each time: the server closes one idle for 30 s.
            st = requests.get(url + "/v1/stats", timeout=30).json()
            anon, mapped = rss_mib(proc.pid)
            row = ((time.monotonic() - start) / 60, len(lat), errors, pct(lat, 50),
                   pct(lat, 99), anon, added, st["pending"],
                   st["hash_copy_bytes"] / 2**20, mapped, st["file_bytes"] / 2**20)
            rows.append(row)
            # Warm-up: the first minute and the first indexing pass (pending falls).
            if (warm is None and len(rows) > 1 and row[0] > a.warmup and
                    any(rows[i][7] < rows[i - 1][7] for i in range(1, len(rows)))):
                warm = len(rows) - 1
            print(f"{row[0]:>7.1f}{row[1]:>10}{row[2]:>8}{row[3]:>9.2f}{row[4]:>9.2f}{row[5]:>9.0f}"
                  f"{row[6]:>9}{row[7]:>9}{row[8]:>9.0f}{row[9]:>9.0f}{row[10]:>9.0f}"
                  f"{'  warm-up ends' if warm == len(rows) - 1 else ''}",
                  flush=True)
    finally:
        total, total_errors, added = Client.stop_all(clients)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    verify = subprocess.run([binary, "verify", "--db", db], capture_output=True, text=True)

    passed = [i for i in range(1, len(rows)) if rows[i][7] < rows[i - 1][7]]
    if warm is None:
        print(f"\nsoak FAILED: no indexing pass in {a.max_warmup:g} minutes "
              f"({added} hashes added)")
        return 1
    after_warmup = rows[warm:]
    first, last = after_warmup[0], after_warmup[-1]
    growth = (last[5] - first[5]) / first[5] * 100
    mid = after_warmup[len(after_warmup) // 2]
    records = (last[6] - mid[6]) * RECORD_BYTES / 2**20
    file_growth = (last[10] - mid[10] - records) / mid[10] * 100
    p99s = [r[4] for r in after_warmup]
    print()
    print(f"requests {total}, errors {total_errors}; hashes added {added}, "
          f"windows with an indexing pass {len(passed)}, warm-up ended at minute {first[0]:.1f}; "
          f"heap {first[5]:.0f} MiB after warm-up, {last[5]:.0f} MiB at the end ({growth:+.1f}%); "
          f"store file {first[10]:.0f} MiB after warm-up, {mid[10]:.0f} MiB half-way, "
          f"{last[10]:.0f} MiB at the end ({records:.0f} MiB of it the records of the hashes "
          f"added in the second half; the rest {file_growth:+.1f}%); "
          f"p50 {min(r[3] for r in after_warmup):.2f}-{max(r[3] for r in after_warmup):.2f} ms, "
          f"p99 {min(p99s):.2f}-{max(p99s):.2f} ms; exit {code}; verify: {verify.stdout.strip()}")
    failed = []
    if total_errors:
        failed.append(f"{total_errors} errors")
    if growth > 10:
        failed.append(f"the heap grew {growth:.1f}%")
    if file_growth > 10:
        failed.append(f"the store file grew {file_growth:.1f}% in the second half, beyond "
                      f"the records of the hashes added")
    if last[4] > 2 * first[4]:
        failed.append(f"p99 went from {first[4]:.2f} to {last[4]:.2f} ms")
    if code != 0 or verify.returncode != 0:
        failed.append("the server did not stop cleanly or the store does not verify")
    if failed:
        print("soak FAILED: " + "; ".join(failed))
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
