#!/usr/bin/env python3
"""make bench: a pdqmatch cluster on this machine.

Starts a 3-server NATS JetStream cluster (nats-server, on 127.0.0.1, each
with its own storage folder) and three `pdqmatch serve --nats` nodes, all
on the same cores, then measures:

1. how soon a hash added through node A is found on node B: 1,000 adds of
   one hash each through A, one at a time; after each reply, B is asked
   until it finds the hash.  The time from A's reply to B's first finding
   is taken for each (goal: p99 under 100 ms);
2. a bulk load of N random hashes (default 1,000,000): `pdqmatch index
   --nats` (the publisher's time, and the time until all three nodes have
   applied it), beside `pdqmatch index --db` of the same list into one
   fresh local store.

usage: bench/bench_cluster.py BUILD_DIR [--adds N] [--bulk N]
"""
import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from natsrig import Nats, Node, ready, wait_applied  # noqa: E402


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def reply_to_found(a, b, n):
    """Seconds from A's reply to B's first lookup that finds the hash."""
    rng = random.Random(1)
    s = requests.Session()
    assert s.post(a.url + "/v1/banks", json={"name": "lat"}, timeout=10).status_code == 201
    out = []
    for i in range(n):
        h = "%064x" % rng.getrandbits(256)
        r = s.post(a.url + "/v1/banks/lat/hashes",
                   json={"items": [{"hash": h, "content_id": f"l{i}"}]}, timeout=10)
        t0 = time.perf_counter()
        assert r.status_code == 200, r.text
        while True:
            m = s.get(b.url + "/v1/lookup", params={"hash": h, "max_distance": 0},
                      timeout=10).json()
            if m["matches"]:
                break
            if time.perf_counter() - t0 > 10:
                sys.exit(f"bench: node B did not find add {i} within 10 s")
        out.append(time.perf_counter() - t0)
    return out


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, cmd))} failed:\n{p.stderr}")
    return time.perf_counter() - t0, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--adds", type=int, default=1000)
    ap.add_argument("--bulk", type=int, default=1000000)
    args = ap.parse_args()
    bin_ = str(Path(args.build).resolve() / "pdqmatch")
    with tempfile.TemporaryDirectory(prefix="pdqm-bench-cluster-") as tmp:
        tmp = Path(tmp)
        rng = random.Random(2)
        lst = tmp / "bulk.txt"
        with open(lst, "w") as f:
            f.write("".join("%064x\n" % rng.getrandbits(256) for _ in range(args.bulk)))
        single_s, _ = timed([bin_, "index", "--db", tmp / "single.db", "--bank", "bulk",
                             "--hash-list", lst, "-q"])

        nats = Nats(tmp)
        nodes = []
        try:
            for name in "abc":
                nodes.append(Node(tmp / f"{name}.db", nats.urls, bin=bin_))
            a, b, _ = nodes
            lat = reply_to_found(a, b, args.adds)
            t0 = time.perf_counter()
            publish_s, out = timed([bin_, "index", "--nats", nats.urls, "--bank", "bulk",
                                    "--hash-list", lst])
            m = re.search(r"in (\d+) log entr(?:y|ies) \(([\d.]+) MB, up to entry (\d+)\)", out)
            entries, mb, last = int(m.group(1)), float(m.group(2)), int(m.group(3))
            wait_applied(nodes, last, timeout=1800)
            applied_s = time.perf_counter() - t0
            held = [ready(n)["hashes"] for n in nodes]
        finally:
            for n in nodes:
                n.stop()
            nats.stop()

    ms = [x * 1000 for x in lat]
    print(f"\nCluster: 3 NATS servers and 3 pdqmatch nodes on the same {os.cpu_count()} cores "
          f"(bench/bench_cluster.py)\n")
    print("| measure | pdqmatch | goal |")
    print("| --- | --- | --- |")
    print(f"| A's reply to B finding the hash, {len(ms)} adds: p50 / p90 / p99 / max | "
          f"{pct(ms, 50):.1f} / {pct(ms, 90):.1f} / {pct(ms, 99):.1f} / {max(ms):.1f} ms "
          f"(mean {statistics.mean(ms):.1f}) | p99 < 100 ms |")
    print(f"| {args.bulk:,} hashes, `index --db` one local store | {single_s:.1f} s | - |")
    print(f"| {args.bulk:,} hashes, `index --nats`: published ({entries} entries, "
          f"{mb:.0f} MB) | {publish_s:.1f} s | - |")
    print(f"| {args.bulk:,} hashes, `index --nats`: applied on all 3 nodes | "
          f"{applied_s:.1f} s | - |")
    if held != [args.bulk + args.adds] * 3:
        sys.exit(f"bench: the nodes hold {held} hashes, not {args.bulk + args.adds} each")


if __name__ == "__main__":
    main()
