#!/usr/bin/python3
"""make bench, second table: pdqmatch's store beside FAISS and Meta's MIH.

Every method answers the same question: every stored hash within Hamming
distance 31 of the query (exact), one query at a time, on one thread, over
the same bench/gen.py corpus (default 1M and 10M hashes; 1000 queries, half
of them planted near a stored hash, half random).

  pdqmatch  `pdqmatch index --hash-list` into a fresh store (wall time and
            max RSS from /usr/bin/time -v), then bench_lookup times
            pdqm_store_lookup a query, read-only, after one warm-up pass;
            size is the LMDB file's bytes / N; single adds (one transaction
            each) go into a copy of the smallest store.
  FAISS     bench/faiss_bench.py, one process an index: IndexBinaryFlat and
            IndexBinaryMultiHash 16x16 nflip 1 (exact for r <= 31), Debian's
            python3-faiss; memory is the RSS growth of building.
  truth     `bench_lookup truth`, an exact brute-force scan; every method's
            recall is measured against it (pdqmatch's must be 1.0).
  Meta      MIH256 from Meta's reference tools, quoted from the index
            benchmark kit's anchors (not run here).
  serve     `pdqmatch serve` on the same store, with wrk (a public HTTP
            load tool): GET /v1/lookup of the same queries on 2
            connections, alone, while a second wrk adds 1,000 single
            hashes a second (paced), and while `pdqmatch index` adds 20,000
            more from another process (a pass in steps in a large store).

Data are generated once into the cache directory and reused while their
manifest matches.  Progress goes to stderr, the table to stdout, the raw
figures to CACHE/results.json.

usage: bench/bench_index.py BUILD_DIR [--sizes 1000000,10000000]
                            [--data /tmp/pdqm-bench-data] [--keep]
"""
import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RADIUS = 31
ADDS = 2000
BANK = "bench"
# bench/gen.py's parameters, all given explicitly so that a cached corpus is
# reused only when every one of them matches its manifest.
GEN = dict(seed=20240601, dup_frac=0.2, kmax=40, hot_frac=0.1, hot_bases=0,
           skew=0.0, nq=1000, qmax=31)
# Meta's C++ MIH256 (reference tools, -O3), 1 thread, exact r <= 31, as
# measured for the index benchmark kit on a 2-core dev machine.
META = {1_000_000: dict(p50_ms=1.02),
        10_000_000: dict(p50_ms=10.0, build_s=190.0, memory_bytes=1.6e9)}

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run(cmd, timeout, **kw):
    """Run cmd; its CompletedProcess, or Failed with the end of its stderr."""
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                           timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise Failed(f"{Path(str(cmd[0])).name}: killed after {timeout} s")
    except OSError as e:
        raise Failed(f"{cmd[0]}: {e}")
    if p.returncode != 0:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        raise Failed(f"{' '.join(map(str, cmd[:3]))}...: exit {p.returncode}: {tail}")
    return p


def json_line(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise Failed("no JSON line in the output")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 24), b""):
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Data and ground truth

def ensure_data(n, cache):
    prefix = cache / f"n{n}"
    man_path = Path(f"{prefix}.manifest.json")
    if man_path.exists():
        man = json.loads(man_path.read_text())
        same = man.get("n") == n and not man.get("no_hex") and all(
            man.get(k) == v for k, v in GEN.items())
        if same and all((cache / f).exists() and sha256(cache / f) == h
                        for f, h in man.get("sha256", {}).items()) \
                and f"n{n}.db.hex" in man.get("sha256", {}):
            log(f"data n={n}: reusing {prefix}.*")
            return prefix, man
    log(f"data n={n}: generating {prefix}.* with bench/gen.py")
    args = [sys.executable, HERE / "gen.py", "--n", n, "--out", prefix]
    for k, v in GEN.items():
        args += [f"--{k.replace('_', '-')}", v]
    run(args, timeout=1200)
    return prefix, json.loads(man_path.read_text())


def ensure_truth(prefix, man, lookup_bin):
    """Exact pairs (qi, row, dist), from the brute force, cached by input."""
    gt, stamp = Path(f"{prefix}.gt.tsv"), Path(f"{prefix}.gt.json")
    name = prefix.name
    key = dict(db=man["sha256"][f"{name}.db.bin"], q=man["sha256"][f"{name}.q.bin"],
               radius=RADIUS)
    if not (gt.exists() and stamp.exists() and json.loads(stamp.read_text()) == key):
        log(f"truth {name}: exact brute force (bench_lookup truth, 2 threads)")
        stamp.unlink(missing_ok=True)
        out = json_line(run([lookup_bin, "truth", f"{prefix}.db.bin", f"{prefix}.q.bin",
                             RADIUS, gt, 2], timeout=1800).stdout)
        log(f"truth {name}: {out['matches']} pairs in {out['scan_s']:.1f} s")
        stamp.write_text(json.dumps(key))
    pairs = {}
    with open(gt) as f:
        next(f)
        for line in f:
            qi, row, d = map(int, line.split())
            pairs[(qi, row)] = d
    return gt, pairs


# ---------------------------------------------------------------------------
# pdqmatch

def time_v(stderr):
    """Wall seconds and max RSS bytes from /usr/bin/time -v's report."""
    wall = re.search(r"Elapsed \(wall clock\) time .*: ([0-9:.]+)", stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if not wall or not rss:
        raise Failed("no /usr/bin/time -v report")
    secs = 0.0
    for part in wall.group(1).split(":"):
        secs = secs * 60 + float(part)
    return secs, int(rss.group(1)) * 1024


def distinct_hashes(prefix):
    """How many distinct hashes the corpus holds: a hash list's rows without
    a content id are named by their hash, so a hash given twice is one item
    (the generator plants about 0.5 % exact duplicates)."""
    db = np.fromfile(f"{prefix}.db.bin", dtype=np.uint8).reshape(-1, 32)
    return len(np.unique(np.ascontiguousarray(db).view(np.dtype((np.void, 32))).ravel()))


def check_matches(pairs_path, prefix, truth):
    """Recall of the store's matches against the exact truth, compared by
    (query, stored hash, distance): rows of the corpus that hold the same
    hash are one stored item, so a match is checked by its hash, not by the
    row it came from."""
    db = np.fromfile(f"{prefix}.db.bin", dtype=np.uint8).reshape(-1, 32)
    with open(pairs_path) as f:
        next(f)
        rows = [line.rstrip("\n").split("\t") for line in f]
    found = {}
    for r in rows:
        found[(int(r[0]), r[4])] = int(r[2])
    want = {}
    for (qi, row), d in truth.items():
        want[(qi, db[row].tobytes().hex())] = d
    hit = sum(1 for k, d in want.items() if found.get(k) == d)
    return dict(recall=hit / len(want) if want else 1.0, gt_matches=len(want),
                false_positives=sum(1 for k in found if k not in want),
                duplicates=len(rows) - len(found), row_mapping="hash")


def bench_pdqmatch(res, n, prefix, truth, build, work, add_test):
    """Fill res, step by step (what was measured stays when a step fails)."""
    pdqmatch, lookup_bin = build / "pdqmatch", build / "bench_lookup"
    store = work / f"n{n}.store.db"
    for p in (store, Path(f"{store}-lock")):
        p.unlink(missing_ok=True)
    log(f"pdqmatch n={n}: pdqmatch index --hash-list ({prefix.name}.db.hex)")
    report = work / "time-v.txt"
    t = time.time()
    run(["/usr/bin/time", "-v", "-o", report, pdqmatch, "index", "--db", store,
         "--bank", BANK, "--hash-list", f"{prefix}.db.hex"], timeout=3600)
    res["import_wall_s"] = time.time() - t
    res["import_s"], res["import_max_rss_bytes"] = time_v(report.read_text())
    res["file_bytes"] = store.stat().st_size
    res["bytes_per_hash"] = res["file_bytes"] / n
    stats = json.loads(run([pdqmatch, "stats", "--db", store, "--json"], timeout=600).stdout)
    res["wide_from"] = stats.get("wide_from", -1)
    log(f"pdqmatch n={n}: imported in {res['import_s']:.1f} s, "
        f"{res['bytes_per_hash']:.0f} B/hash; timing lookups")
    pairs = work / f"n{n}.pairs.tsv"
    res["lookup"] = json_line(run(["/usr/bin/time", "-v", "-o", report, lookup_bin, "lookup",
                                   store, f"{prefix}.q.hex", pairs, RADIUS],
                                  timeout=1800).stdout)
    _, res["lookup_max_rss_bytes"] = time_v(report.read_text())
    distinct = distinct_hashes(prefix)
    if res["lookup"]["hashes"] != distinct:
        raise Failed(f"the store holds {res['lookup']['hashes']} hashes, not the corpus's "
                     f"{distinct} distinct ones")
    res.update(check_matches(pairs, prefix, truth))
    log(f"pdqmatch n={n}: p50 {res['lookup']['p50_ms']:.3f} ms, recall {res['recall']:.4f}")
    if add_test:
        copy = work / "adds.store.db"
        shutil.copyfile(store, copy)
        log(f"pdqmatch n={n}: {ADDS} single adds into a copy of the store")
        try:
            res["add"] = json_line(run([lookup_bin, "add", copy, ADDS, BANK],
                                       timeout=1800).stdout)
        finally:
            for p in (copy, Path(f"{copy}-lock")):
                p.unlink(missing_ok=True)
        log(f"pdqmatch n={n}: {res['add']['adds_per_s']:.0f} adds/s")
    res["serve"] = {}
    try:
        bench_server(res["serve"], n, store, prefix, build, work)
    except Failed as e:
        log(f"pdqmatch n={n}: serve: FAILED: {e}")
        res["serve"]["error"] = str(e)


# ---------------------------------------------------------------------------
# A server on the store

# wrk (a public HTTP load tool) against `pdqmatch serve` on the same store:
# GET /v1/lookup of the query hashes on SERVE_CONNS connections (one in
# flight a core: more would only queue), alone, then while another wrk
# adds single hashes at ADD_RATE a second, then while `pdqmatch index`
# adds PASS_HASHES more from another process (from 4M hashes on, its pass
# goes in steps).
SERVE_CONNS, SERVE_SECONDS, ADD_RATE, PASS_HASHES = 2, 20, 1000, 20000
# The adds' connections: enough that an add waiting for a commit (its
# fsync; 150 ms at p99 here) does not hold back the pace.
ADD_CONNS = 32

SERVE_LOOKUP_LUA = r"""
local requests = {}
init = function(args)
  for line in io.lines("%(queries)s") do
    requests[#requests + 1] = wrk.format("GET", "/v1/lookup?hash=" .. line)
  end
end
local i = 0
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""

# One single add a request, paced to %(rate)d a second (delay() before
# each: the clock through LuaJIT's FFI), uniformly random hashes.
SERVE_ADD_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } pdqm_ts;
int clock_gettime(int clk, pdqm_ts *ts);
]]
local ts = ffi.new("pdqm_ts")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local start, n, counter = nil, 0, 0
local tag = tostring(os.time())
delay = function()
  local t = now_ms()
  if not start then start = t end
  n = n + 1
  local due = start + n * 1000 / %(rate)d
  if due > t then return math.floor(due - t) end
  return 0
end
request = function()
  counter = counter + 1
  local r = math.random
  local h = string.format("%%08x%%08x%%08x%%08x%%08x%%08x%%08x%%08x",
    r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff),
    r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff))
  return wrk.format("POST", "/v1/banks/load/hashes", {["Content-Type"] = "application/json"},
    '{"items":[{"hash":"' .. h .. '","content_id":"w' .. tag .. '-' .. counter .. '"}]}')
end
"""


def wrk_run(url, script, seconds, conns, threads=1):
    """wrk's requests/s, p50 and p99 (ms) and errors, with its script."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        lua = f.name
    try:
        out = run(["wrk", "-t", threads, "-c", conns, "-d", f"{seconds}s", "--latency",
                   "-s", lua, url], timeout=seconds + 120).stdout
    finally:
        os.unlink(lua)
    def lat(label):
        m = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", out)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": lat("50%"), "p99_ms": lat("99%"),
            "errors": (int(bad.group(1)) if bad else 0) + (1 if sock else 0)}


def bench_server(res, n, store, prefix, build, work):
    pdqmatch = build / "pdqmatch"
    subprocess.run([str(pdqmatch), "banks", "create", "load", "--db", str(store)],
                   capture_output=True, timeout=600)   # (there already when run again)
    queries = work / "serve-q.hex"
    queries.write_text("\n".join(Path(f"{prefix}.q.hex").read_text().split()) + "\n")
    serve_log = work / "serve.log"
    serve_log.unlink(missing_ok=True)
    proc = subprocess.Popen([str(pdqmatch), "serve", "--db", str(store), "--listen",
                             "127.0.0.1:0", "--log-file", str(serve_log)],
                            stderr=subprocess.PIPE, text=True)
    try:
        port, end = None, time.time() + 600
        while port is None and time.time() < end:
            time.sleep(0.2)
            if proc.poll() is not None:
                raise Failed("pdqmatch serve ended: " + proc.stderr.read()[-500:])
            m = re.search(r"listen=127\.0\.0\.1:(\d+)",
                          serve_log.read_text() if serve_log.exists() else "")
            port = m and m.group(1)
        if port is None:
            raise Failed("pdqmatch serve did not start")
        url = f"http://127.0.0.1:{port}"
        look = SERVE_LOOKUP_LUA % {"queries": queries}
        # Warm: the lookup copies fill, and the store's pages come into the
        # page cache (about 10 GB at 100M, read at random the first time):
        # 5 s slices of lookups until one is no faster than the one before.
        log(f"pdqmatch n={n}: serve: lookups to warm, then {SERVE_SECONDS} s each alone, "
            f"with {ADD_RATE} adds/s, and beside `pdqmatch index` of {PASS_HASHES}")
        rates = [0.0]
        while len(rates) < 60:
            rates.append(wrk_run(url, look, 5, 8, 2)["rps"])
            if rates[-1] < rates[-2] * 1.05:
                break
        log(f"pdqmatch n={n}: serve: warm after {5 * (len(rates) - 1)} s "
            f"({rates[-1]:.0f} lookups/s on 8 connections)")
        res["alone"] = wrk_run(url, look, SERVE_SECONDS, SERVE_CONNS)
        adder = {}
        def adds():
            adder.update(wrk_run(url, SERVE_ADD_LUA % {"rate": ADD_RATE}, SERVE_SECONDS + 2,
                                 ADD_CONNS))
        import threading
        t = threading.Thread(target=adds)
        t.start()
        time.sleep(1)
        res["with_adds"] = wrk_run(url, look, SERVE_SECONDS, SERVE_CONNS)
        t.join()
        if not adder:
            raise Failed("the adds' wrk failed")
        res["adds"] = adder
        # Another process adds a list: its pass goes in steps, lookups go on.
        extra = work / "serve-extra.hex"
        rng = np.random.default_rng(n)
        extra.write_text("".join("%064x\n" % int.from_bytes(rng.bytes(32), "big")
                                 for _ in range(PASS_HASHES)))
        t0 = time.time()
        cli = subprocess.Popen([str(pdqmatch), "index", "--db", str(store), "--bank", "load",
                                "--hash-list", str(extra)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        import threading
        ended = {}
        waiter = threading.Thread(target=lambda: ended.update(rc=cli.wait(timeout=3600),
                                                              s=time.time() - t0))
        waiter.start()
        res["beside_index"] = wrk_run(url, look, SERVE_SECONDS, SERVE_CONNS)
        waiter.join()
        if ended.get("rc") != 0:
            raise Failed("pdqmatch index beside the server: " + cli.stderr.read()[-500:])
        res["index_s"] = ended["s"]
        for line in open(f"/proc/{proc.pid}/status"):
            if line.startswith("VmHWM:"):
                res["max_rss_bytes"] = int(line.split()[1]) * 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
    log(f"pdqmatch n={n}: serve p99 {res['alone']['p99_ms']:.2f} ms alone, "
        f"{res['with_adds']['p99_ms']:.2f} ms with {res['adds']['rps']:.0f} adds/s")


# ---------------------------------------------------------------------------
# FAISS

# Memory FAISS takes a hash, as measured at 10M (results.json): an index
# that would not fit in the memory available is not built.
FAISS_BYTES = {"flat": 32, "mih": 276}


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def bench_faiss(res, n, prefix, gt_path, index):
    need, have = FAISS_BYTES[index] * n, mem_available()
    if need > 0.8 * have:
        raise Failed(f"not run: it needs about {mb(need)} of memory, "
                     f"{mb(have)} is available")
    log(f"faiss {index} n={n}: build and {GEN['nq']} range searches")
    res.update(json_line(run([sys.executable, HERE / "faiss_bench.py", prefix, index,
                         "--gt", gt_path, "--radius", RADIUS], timeout=3600).stdout))
    log(f"faiss {index} n={n}: p50 {res['p50_ms']:.3f} ms, recall {res['recall']:.4f}")


# ---------------------------------------------------------------------------
# The table

def ms(x):
    return "" if x is None else f"{x:.3f} ms" if x < 1 else f"{x:.2f} ms" if x < 100 else f"{x:.0f} ms"


def secs(x):
    return f"{x:.2f} s" if x < 10 else f"{x:.0f} s"


def mb(x):
    return f"{x / 1e9:.2f} GB" if x >= 1e9 else f"{x / 1e6:.0f} MB"


def count(n):
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"


def recall(r):
    if "recall" not in r:
        return ""
    s = f"{r['recall']:.4f} ({round(r['recall'] * r['gt_matches'])}/{r['gt_matches']})"
    return s + (f", {r['false_positives']} false" if r.get("false_positives") else "")


def table(sizes, results, load):
    head = ("what", "N", "p50 lookup", "p99 lookup", "build / import", "size / memory",
            "recall", "p50 / pdqmatch's")
    rows = []
    for n in sizes:
        res = results[n]
        pq = res["pdqmatch"]
        base = pq.get("lookup", {}).get("p50_ms")
        if "recall" not in pq:
            rows.append(("pdqmatch store", count(n), "failed (see note)", "",
                         secs(pq["import_s"]) if "import_s" in pq else "",
                         f"{pq['bytes_per_hash']:.0f} B/hash" if "bytes_per_hash" in pq else "",
                         "", ""))
        else:
            lk = pq["lookup"]
            layout = ("16x16 MIH" if pq.get("wide_from", -1) < 0 else
                      "11x23 MIH + suffixes" if pq["wide_from"] == 0 else "16x16, then 11x23")
            rows.append((f"pdqmatch store (LMDB, {layout})", count(n), ms(lk["p50_ms"]),
                         ms(lk["p99_ms"]),
                         f"{secs(pq['import_s'])}, max RSS {mb(pq['import_max_rss_bytes'])}",
                         f"{pq['bytes_per_hash']:.0f} B/hash ({mb(pq['file_bytes'])} file); "
                         f"lookup process max RSS {mb(pq.get('lookup_max_rss_bytes', 0))}",
                         recall(pq), "1.0x"))
        for key, label in (("flat", "FAISS IndexBinaryFlat"),
                           ("mih", "FAISS IndexBinaryMultiHash 16x16 nflip 1")):
            r = res[key]
            if "error" in r:
                rows.append((label, count(n), "failed (see note)", "", "", "", "", ""))
                continue
            rows.append((label, count(n), ms(r["p50_ms"]), ms(r["p99_ms"]), secs(r["build_s"]),
                         f"{mb(r['memory_bytes'])} RAM ({r['memory_bytes'] / n:.0f} B/hash)",
                         recall(r), f"{r['p50_ms'] / base:.1f}x" if base else ""))
        m = META.get(n)
        if m:
            rows.append(("Meta MIH256 C++, quoted (not run)", count(n), ms(m["p50_ms"]), "",
                         secs(m["build_s"]) if "build_s" in m else "",
                         f"{mb(m['memory_bytes'])} RAM" if "memory_bytes" in m else "",
                         "exact", f"{m['p50_ms'] / base:.1f}x" if base else ""))
    for n in sizes:
        sv = results[n]["pdqmatch"].get("serve", {})
        if "alone" not in sv:
            continue
        look = lambda r: f"{r['rps']:.0f} lookups/s" + (f", {r['errors']} errors" if r["errors"] else "")
        rows.append((f"pdqmatch serve, GET /v1/lookup (wrk -c{SERVE_CONNS})", count(n),
                     ms(sv["alone"]["p50_ms"]), ms(sv["alone"]["p99_ms"]), look(sv["alone"]),
                     f"server max RSS {mb(sv.get('max_rss_bytes', 0))}", "", ""))
        if "with_adds" in sv:
            ad = sv["adds"]
            rows.append((f"  while taking {ADD_RATE} single adds/s", count(n),
                         ms(sv["with_adds"]["p50_ms"]), ms(sv["with_adds"]["p99_ms"]),
                         look(sv["with_adds"]),
                         f"adds: {ad['rps']:.0f}/s, p50 {ms(ad['p50_ms'])}, p99 {ms(ad['p99_ms'])}"
                         + (f", {ad['errors']} errors" if ad["errors"] else ""), "", ""))
        if "beside_index" in sv:
            rows.append((f"  beside `pdqmatch index` of {PASS_HASHES:,} more",
                         count(n), ms(sv["beside_index"]["p50_ms"]),
                         ms(sv["beside_index"]["p99_ms"]), look(sv["beside_index"]),
                         f"the index took {secs(sv['index_s'])}", "", ""))
    for n in sizes:
        add = results[n]["pdqmatch"].get("add")
        if add:
            rows.append(("pdqmatch single add, 1 transaction each", f"{count(n)} + {add['adds']}",
                         ms(add["p50_ms"]), ms(add["p99_ms"]),
                         f"{add['adds_per_s']:.0f} adds/s", "", "", ""))
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))
    print()
    print(f"""
Exact search: every stored hash within distance {RADIUS}, one query a call, one
thread, {GEN['nq']} queries ({GEN['nq'] // 2} planted near a stored hash, {GEN['nq'] - GEN['nq'] // 2} random) over
bench/gen.py corpora; recall is against an exact brute-force scan.
pdqmatch: import is `pdqmatch index --hash-list` (/usr/bin/time -v); lookups
are timed after one warm-up pass (store in the page cache); size is the LMDB
file / N; single adds go into a copy of the {count(sizes[0])} store.  FAISS as Debian
ships it (python3-faiss, baseline x86-64), built on one thread; memory is the
RSS growth of building.  Meta: the index benchmark kit's anchors for Meta's
MIH256, measured on the same kind of 2-core machine.  Last column: a method's
p50 divided by pdqmatch's.
pdqmatch serve: wrk -t1 -c{SERVE_CONNS} GET /v1/lookup of the same queries, {SERVE_SECONDS} s a row
after a warm-up, on the store just measured (access log on, to a file);
goal at 100M: p99 <= 10 ms while taking {ADD_RATE} single adds/s (a second wrk,
paced, {ADD_CONNS} connections, one hash a POST).  The load tools share the 2 cores.""".lstrip("\n"))
    notes = []
    for n in sizes:
        for key in ("pdqmatch", "flat", "mih"):
            if "error" in results[n][key]:
                notes.append(f"N={count(n)}: {key} failed: {results[n][key]['error']}")
        pq = results[n]["pdqmatch"]
        if pq.get("row_mapping") == "content id":
            notes.append(f"N={count(n)}: entry ids were not corpus rows; matched by content id.")
        if pq.get("lookup", {}).get("pending"):
            notes.append(f"N={count(n)}: {pq['lookup']['pending']} hashes not yet indexed "
                         "(found by scanning): lookups are slower than a finished import's.")
        if pq.get("duplicates"):
            notes.append(f"N={count(n)}: {pq['duplicates']} pairs reported twice.")
    if load > 0.5:
        notes.append(f"the load average was {load:.2f} at the start: other work shared the cores.")
    for note in notes:
        print("Note: " + note)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--data", default="/tmp/pdqm-bench-data",
                    help="cache of corpora and ground truth")
    ap.add_argument("--keep", action="store_true", help="keep the stores and match lists")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    sizes = sorted({int(s) for s in a.sizes.split(",") if s.strip()})
    for f in (build / "pdqmatch", build / "bench_lookup"):
        if not os.access(f, os.X_OK):
            sys.exit(f"bench_index: {f} is missing: run `make build` first")
    lib = build / "libpdqmatch.a"
    if lib.exists() and lib.stat().st_mtime > (build / "bench_lookup").stat().st_mtime:
        sys.exit(f"bench_index: {build / 'bench_lookup'} is older than {lib}: run `make build`")
    cache = Path(a.data).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    lock = open(cache / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(f"bench_index: another bench_index.py is using {cache}")
    # A kill ends the run through the finally below (removing the stores).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = cache / f"run-{os.getpid()}"
    work.mkdir()
    try:
        return bench(a, build, sizes, work)
    except Failed as e:
        sys.exit(f"bench_index: {e}")


def bench(a, build, sizes, work):
    cache = work.parent
    results = {}
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"load average {load:.2f}: something else is running; the figures will be noisy")
    try:
        for i, n in enumerate(sizes):
            prefix, man = ensure_data(n, cache)
            gt_path, truth = ensure_truth(prefix, man, build / "bench_lookup")
            res = results[n] = {}
            for key, fn in (("pdqmatch", lambda r: bench_pdqmatch(r, n, prefix, truth, build,
                                                                   work, add_test=i == 0)),
                            ("flat", lambda r: bench_faiss(r, n, prefix, gt_path, "flat")),
                            ("mih", lambda r: bench_faiss(r, n, prefix, gt_path, "mih"))):
                res[key] = {}
                try:
                    fn(res[key])
                except Failed as e:
                    log(f"{key} n={n}: FAILED: {e}")
                    res[key]["error"] = str(e)
            if not a.keep:
                for p in work.glob(f"n{n}.*"):
                    p.unlink()
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    (cache / "results.json").write_text(json.dumps(results, indent=1))
    log(f"done; raw figures in {cache / 'results.json'}")
    table(sizes, results, load)
    bad = [n for n in sizes if results[n]["pdqmatch"].get("recall") != 1.0
           or results[n]["pdqmatch"].get("false_positives")]
    if bad:
        print(f"bench_index: pdqmatch failed or is not exact at N = {', '.join(map(str, bad))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
