#!/usr/bin/python3
"""One FAISS binary index on one gen.py corpus: build, then time range search.

usage: faiss_bench.py DATA_PREFIX flat|mih [--gt GT.tsv] [--radius 31]

  flat  IndexBinaryFlat (a full scan)
  mih   IndexBinaryMultiHash, 16 tables of 16 bits, nflip 1: a stored hash
        within 31 bits agrees with the query within 1 bit in some 16-bit
        slot (pigeonhole), so this is exact for r <= 31.

Run one index per process, so that its memory is measured alone.  Everything
runs on one thread.  Prints one JSON line: build seconds, p50/p99 latency of a
single-query range_search, RSS growth of building (the index's memory), and,
given the ground truth (`qi id dist` lines, dist <= r), recall and false
positives.  FAISS keeps distances strictly below the radius it is given, so
the search asks for r + 1.
"""
import argparse
import gc
import json
import sys
import time

import numpy as np
import faiss


def rss_bytes(field="VmRSS"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("index", choices=("flat", "mih"))
    ap.add_argument("--gt")
    ap.add_argument("--radius", type=int, default=31)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    faiss.omp_set_num_threads(1)

    q = np.fromfile(a.data + ".q.bin", dtype=np.uint8).reshape(-1, 32)
    gc.collect()
    rss0 = rss_bytes()
    db = np.fromfile(a.data + ".db.bin", dtype=np.uint8).reshape(-1, 32)
    n = len(db)
    t0 = time.perf_counter()
    if a.index == "flat":
        index = faiss.IndexBinaryFlat(256)
    else:
        index = faiss.IndexBinaryMultiHash(256, 16, 16)
        index.nflip = 1
    index.add(db)
    build_s = time.perf_counter() - t0
    del db
    gc.collect()
    rss1 = rss_bytes()

    for j in range(min(a.warmup, len(q))):
        index.range_search(q[j:j + 1], a.radius + 1)
    lat = np.empty(len(q))
    found = []
    for j in range(len(q)):
        t0 = time.perf_counter()
        lims, dist, ids = index.range_search(q[j:j + 1], a.radius + 1)
        lat[j] = time.perf_counter() - t0
        found.append({int(i): int(d) for i, d in zip(ids, dist)})

    out = dict(tool="faiss", index=a.index, n=n, nq=len(q), radius=a.radius,
               build_s=round(build_s, 3), memory_bytes=rss1 - rss0,
               hwm_bytes=rss_bytes("VmHWM"),
               p50_ms=round(float(np.percentile(lat, 50)) * 1e3, 4),
               p99_ms=round(float(np.percentile(lat, 99)) * 1e3, 4),
               mean_ms=round(float(lat.mean()) * 1e3, 4),
               matches=sum(len(f) for f in found))
    if a.gt:
        truth = [dict() for _ in q]
        with open(a.gt) as f:
            for line in f:
                qi, i, d = line.split()
                if qi.isdigit():
                    truth[int(qi)][int(i)] = int(d)
        total = sum(len(t) for t in truth)
        hit = sum(1 for t, f in zip(truth, found) for i, d in t.items() if f.get(i) == d)
        out.update(gt_matches=total, recall=hit / total if total else 1.0,
                   false_positives=sum(1 for t, f in zip(truth, found) for i in f if i not in t))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
