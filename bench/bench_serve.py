#!/usr/bin/env python3
"""pdqmatch serve under load on loopback: a table against HMA's field report.

Builds a store of the bench/gen.py corpus (default 1M hashes, shared with
bench_index.py's cache), starts `pdqmatch serve` on 127.0.0.1 and measures,
with wrk (a public HTTP load tool):

  GET /v1/lookup?hash=         requests/s and p99 latency (1000 query hashes)
  GET /m/raw_lookup, /m/lookup HMA's lookups by signal (serve --hma), the
                               same hashes, in the same rounds: their rate
                               as a share of GET /v1/lookup's
  GET /healthz                 requests/s with the same wrk settings and
                               the same request() script machinery: the
                               HTTP floor, what a request costs with no work
  POST /v1/lookup/media        requests/s with a 512x512 JPEG
  POST /v1/banks/NAME/hashes   hashes/s in batches of 1000 (fresh ids)

and, with bench_lookup, the in-process search time of the same 1000 hashes
on the same store (the mean a query; the server idles meanwhile).  A lookup over HTTP costs
at least the floor (cores / healthz rate, in core-seconds) plus the
search, so the cores allow cores / (floor + search) lookups a second; the
table prints the lookup rate as a share of that, for each of three rounds
and the median round.  A round takes the search, healthz and lookups in
turn, five times over (2 s a row each time), and merges each row, so that
the three see the machine at the same speed.  The access log is on, to a file,
as in production.

The peer is Hasher-Matcher-Actioner / Open Media Match, whose published
field report gives 450-500 lookups/s on 10 pods.  On 2 cores the load tool
shares the machine with the server, so these figures are a lower bound.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_index  # noqa: E402  (the corpus cache)


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


# wrk's settings for the healthz and lookup rows (the same for both).
THREADS, CONNS = 2, 32
# A round's rows are each run in this many slices, taken in turn.
SLICES = 5


def log(msg):
    print(f"bench_serve: {msg}", file=sys.stderr, flush=True)


LOOKUP_LUA = r"""
-- Every request is formatted once, in init: the load generator shares the
-- 2 cores.  wrk calls request() for each request, in Lua.
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

# The floor is measured with the same machinery as the lookups: wrk calls a
# Lua request() for each request, which costs the load generator, on the
# same 2 cores, some microseconds that a script-free run does not pay.  The
# rows then differ only by what the server does.
# HMA's lookups of the same hashes (signal_type=pdq).
HMA_LUA = r"""
local requests = {}
init = function(args)
  for line in io.lines("%(queries)s") do
    requests[#requests + 1] = wrk.format("GET", "%(path)s?signal_type=pdq&signal=" .. line)
  end
end
local i = 0
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""

HEALTHZ_LUA = r"""
local req
init = function(args) req = wrk.format("GET", "/healthz") end
request = function() return req end
"""

# Appended to the healthz and lookup scripts: the figures a round merges
# across its slices (requests, microseconds, latency quantiles).
DONE_LUA = r"""
done = function(summary, latency, requests)
  io.write(string.format("slice requests=%d duration_us=%d\n", summary.requests, summary.duration))
  for _, p in ipairs({50, 80, 90, 95, 97, 98, 98.5, 99, 99.25, 99.5, 99.75, 99.9, 99.99}) do
    io.write(string.format("slice p%s=%d\n", p, latency:percentile(p)))
  end
  io.write(string.format("slice p100=%d\n", latency.max))
end
"""

MEDIA_LUA = r"""
local f = io.open("%(jpeg)s", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "image/jpeg"
"""

ADD_LUA = r"""
local counter = 0
local thread_id = 0
local nthreads = 0
setup = function(thread) nthreads = nthreads + 1; thread:set("tid", nthreads) end
init = function(args) thread_id = tid end
request = function()
  counter = counter + 1
  local items = {}
  for k = 1, 1000 do
    -- 256 uniformly random bits, as real PDQ hashes look to the index
    -- (skewed hashes, such as mostly zero ones, crowd a few postings).
    -- One format call a hash: the load generator shares the 2 cores.
    local r = math.random
    local h = string.format("%%08x%%08x%%08x%%08x%%08x%%08x%%08x%%08x",
                            r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff),
                            r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff), r(0, 0xffffffff))
    items[k] = '{"hash":"' .. h .. '","content_id":"t' .. thread_id .. '-' .. counter .. '-' .. k .. '"}'
  end
  return wrk.format("POST", "/v1/banks/load/hashes", {["Content-Type"] = "application/json"},
                    '{"items":[' .. table.concat(items, ",") .. ']}')
end
"""


def wrk(url, script, seconds, conns, threads=1):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script or "")
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
                          "--latency"] + (["-s", f.name] if script else []) + [url],
                         capture_output=True, text=True, timeout=seconds + 120)
    os.unlink(f.name)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def ms(label):
        m = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", text)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    r = {"rps": rps, "p50": ms("50%"), "p99": ms("99%"),
         "non2xx": int(non2xx.group(1)) if non2xx else 0,
         "socket_errors": errors.group(1) if errors else "", "raw": text}
    m = re.search(r"slice requests=(\d+) duration_us=(\d+)", text)
    if m:
        r["requests"], r["us"] = int(m.group(1)), int(m.group(2))
        r["quantiles"] = [(float(p), int(v)) for p, v in re.findall(r"slice p([\d.]+)=(\d+)", text)]
    return r


def merged(slices):
    """One row from its slices: the rate over all of them, and p50 and p99
    of their pooled latencies (each slice's distribution interpolated
    between the quantiles it printed, weighted by its requests)."""
    n = sum(x["requests"] for x in slices)
    def cdf(x):
        total = 0.0
        for sl in slices:
            pts = [(0.0, 0)] + sl["quantiles"]
            f = 100.0
            for (p0, v0), (p1, v1) in zip(pts, pts[1:]):
                if x < v1:
                    f = p0 + (p1 - p0) * (x - v0) / (v1 - v0) if x > v0 else p0
                    break
            total += sl["requests"] * f
        return total / n
    def quantile(p):
        lo, hi = 0.0, float(max(sl["quantiles"][-1][1] for sl in slices))
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
        return hi / 1000.0          # microseconds to ms
    return {"rps": n / (sum(x["us"] for x in slices) / 1e6), "p50": quantile(50),
            "p99": quantile(99), "non2xx": sum(x["non2xx"] for x in slices),
            "socket_errors": "; ".join(x["socket_errors"] for x in slices if x["socket_errors"]),
            "raw": "\n".join(x["raw"] for x in slices)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--data", default="/tmp/pdqm-bench-data")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    binary = build / "pdqmatch"
    cache = Path(a.data)
    cache.mkdir(parents=True, exist_ok=True)
    prefix, _ = bench_index.ensure_data(a.n, cache)
    work = Path(tempfile.mkdtemp(prefix="pdqm-serve-", dir=cache))
    db = work / "s.db"
    log(f"indexing {a.n} hashes into {db}")
    subprocess.run([binary, "index", "--db", db, "--bank", "bench", "--hash-list",
                    f"{prefix}.db.hex"], check=True, capture_output=True, timeout=3600)
    subprocess.run([binary, "banks", "create", "load", "--db", db], check=True,
                   capture_output=True)
    queries = work / "q.hex"
    queries.write_text("\n".join(Path(f"{prefix}.q.hex").read_text().split()[:1000]) + "\n")
    jpeg = work / "q.jpg"
    subprocess.run(["vips", "thumbnail", str(ROOT / "samples" / "bridge.jpg"), str(jpeg), "512",
                    "--height", "512", "--size", "force"], check=True, capture_output=True)
    def search_ms():
        """The in-process search of the same hashes on the same store: the
        mean a query of one bench_lookup run (the server idles meanwhile)."""
        out = subprocess.run([build / "bench_lookup", "lookup", db, queries, work / "pairs.tsv",
                              "31"], check=True, capture_output=True, text=True, timeout=1800)
        return json.loads(out.stdout.strip().splitlines()[-1])["mean_ms"]
    cores = os.cpu_count()
    # The access log on, as in production: to a file (a record a request
    # would fill a pipe nobody reads).
    serve_log = work / "serve.log"
    proc = subprocess.Popen([binary, "serve", "--db", db, "--listen", "127.0.0.1:0", "--hma",
                             "--log-file", str(serve_log)], stderr=subprocess.PIPE, text=True)
    rounds = []
    try:
        port = listen_port(serve_log, proc)
        url = f"http://127.0.0.1:{port}"
        time.sleep(0.5)
        lookup = LOOKUP_LUA % {"queries": queries} + DONE_LUA
        hma_raw = HMA_LUA % {"queries": queries, "path": "/m/raw_lookup"} + DONE_LUA
        hma_look = HMA_LUA % {"queries": queries, "path": "/m/lookup"} + DONE_LUA
        per = max(1, a.seconds // SLICES)
        wrk(url, lookup, 2, CONNS, THREADS)     # warm the in-memory copy
        for i in range(3):
            # A round measures the search, the floor and the lookups in
            # turn, SLICES times over, and merges each: all three then see
            # the machine's speed of the same half minute, which on a
            # shared machine drifts by a half within a minute.
            log(f"round {i + 1} of 3: bench_lookup, GET /healthz, GET /v1/lookup, "
                f"{SLICES} times in turn")
            searches, floors, looks, raws, hmas = [], [], [], [], []
            for _ in range(SLICES):
                searches.append(search_ms())
                floors.append(wrk(url, HEALTHZ_LUA + DONE_LUA, per, CONNS, THREADS))
                looks.append(wrk(url, lookup, per, CONNS, THREADS))
                raws.append(wrk(url, hma_raw, per, CONNS, THREADS))
                hmas.append(wrk(url, hma_look, per, CONNS, THREADS))
            search = sum(searches) / len(searches)
            floor, look = merged(floors), merged(looks)
            raw, hma = merged(raws), merged(hmas)
            allowed = cores / (cores / floor["rps"] + search / 1000)
            rounds.append({"floor": floor, "look": look, "search": search, "allowed": allowed,
                           "share": look["rps"] / allowed, "raw": raw, "hma": hma,
                           "raw_share": raw["rps"] / look["rps"],
                           "hma_share": hma["rps"] / look["rps"]})
        log("POST /v1/lookup/media")
        media = wrk(url + "/v1/lookup/media", MEDIA_LUA % {"jpeg": jpeg}, a.seconds, 8)
        log("POST /v1/banks/load/hashes")
        add = wrk(url, ADD_LUA % {}, a.seconds, 4)
        rss = 0
        for line in open(f"/proc/{proc.pid}/status"):
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) // 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    records = sum(1 for line in serve_log.open() if " request " in line)
    subprocess.run([binary, "verify", "--db", db], check=True, capture_output=True)
    runs = ([r["floor"] for r in rounds] + [r["look"] for r in rounds] +
            [r["raw"] for r in rounds] + [r["hma"] for r in rounds] + [media, add])
    for r in runs:
        if r["non2xx"] or r["socket_errors"]:
            log("errors during the run:\n" + r["raw"])
    mid = sorted(rounds, key=lambda r: r["share"])[1]     # the median round
    look = mid["look"]
    p99s = sorted(r["look"]["p99"] for r in rounds)

    def each(f):
        return "  (" + ", ".join(f(r) for r in rounds) + ")"
    print(f"\npdqmatch serve, {a.n:,} hashes, loopback, {cores} cores "
          f"(wrk on the same cores, -t{THREADS} -c{CONNS}), {a.seconds} s a row, "
          f"access log on ({records:,} records)")
    print(f"{'':38}{'pdqmatch':>22}{'goal':>14}{'HMA (10 pods)':>16}   rounds")
    print(f"{'GET /v1/lookup?hash=':38}{look['rps']:>14,.0f} req/s{'':>14}{'450-500/s':>16}"
          + each(lambda r: f"{r['look']['rps']:,.0f}"))
    print(f"{'  p50 / p99 latency':38}{look['p50']:>10.2f} / {p99s[1]:.2f} ms{'p99 <= 5 ms':>14}"
          f"{'':>16}" + each(lambda r: f"{r['look']['p99']:.2f}"))
    print(f"{'GET /healthz (the HTTP floor)':38}{mid['floor']['rps']:>14,.0f} req/s{'':>14}"
          f"{'':>16}" + each(lambda r: f"{r['floor']['rps']:,.0f}"))
    print(f"{'search in-process (bench_lookup, mean)':38}{mid['search']:>19.3f} ms"
          f"{'':>14}{'':>16}" + each(lambda r: f"{r['search']:.3f}"))
    print(f"{'floor + search allow':38}{mid['allowed']:>14,.0f} req/s")
    print(f"{'lookups / what they allow':38}{mid['share']:>22.2f}{'>= 0.8':>14}{'':>16}"
          + each(lambda r: f"{r['share']:.2f}"))
    # HMA's lookups by signal, as a share of GET /v1/lookup in the same
    # rounds (the median round of each).
    for key, label in (("raw", "GET /m/raw_lookup (HMA)"), ("hma", "GET /m/lookup (HMA)")):
        midr = sorted(rounds, key=lambda r: r[key + "_share"])[1]
        print(f"{label:38}{midr[key]['rps']:>14,.0f} req/s{'':>14}{'450-500/s':>16}"
              + each(lambda r: f"{r[key]['rps']:,.0f}"))
        print(f"{'  share of GET /v1/lookup':38}{midr[key + '_share']:>22.2f}{'>= 0.8':>14}"
              f"{'':>16}" + each(lambda r: f"{r[key + '_share']:.2f}"))
    print(f"{'POST /v1/lookup/media (512² JPEG)':38}{media['rps']:>14,.0f} req/s{'>= 300':>14}")
    print(f"{'POST /v1/banks/NAME/hashes':38}{add['rps'] * 1000:>11,.0f} hashes/s"
          f"{'>= 200,000':>14}")
    print(f"{'server peak RSS':38}{rss:>17,} MiB")
    print(f"{'errors (non-2xx, socket)':38}{sum(r['non2xx'] for r in runs):>22}")
    subprocess.run(["rm", "-rf", str(work)])


ROOT = HERE.parent

if __name__ == "__main__":
    main()
