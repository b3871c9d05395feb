"""A service's pass in a large store goes in steps (index/README.md,
"Passes in steps"): the small add that brings the pass returns after its
first step, a thread of the server takes the others, each its own
transaction, and adds and lookups go on between them.  Made to here with
PDQM_STEP_FROM=1 (every store counts as large) and 2,000 keys a step (of 1.77M).

While the server's pass goes on, lookups equal a brute force and adds are
taken; the pass ends by itself.  A second pass is cut short by SIGTERM:
the server stops cleanly, the store verifies, and the next server, at its
next small add, goes on where the pass stopped (that add, past the pass's
window, waits for the next pass)."""
import json
import os
import time
import urllib.request

from helpers import flip, random_hashes, run, start_server, stop_server

BASE = 8000        # indexed by `pdqmatch index`
BATCH = 1000       # a small add (at most 1,024 hashes)


def env_steps():
    return dict(os.environ, PDQM_STEP_FROM="1", PDQM_STEP_KEYS="2000")


def start(db):
    return start_server("--db", db, "--listen", "127.0.0.1:0", env=env_steps())


def call(url, path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def add(url, hashes, first):
    items = [{"hash": h, "content_id": f"i{first + i}"} for i, h in enumerate(hashes)]
    assert call(url, "/v1/banks/b/hashes", {"items": items})["added"] == len(items)


def check_lookups(url, queries, stored):
    """Lookups at radius 31 equal a brute force over the stored hashes."""
    for q in queries:
        got = {(m["content_id"], m["distance"])
               for m in call(url, f"/v1/lookup?hash={q}&max_distance=31")["matches"]}
        want = set()
        for cid, h in stored.items():
            d = bin(int(q, 16) ^ int(h, 16)).count("1")
            if d <= 31:
                want.add((cid, d))
        assert got == want, f"{q}: {len(want - got)} missing, {len(got - want)} extra"


def test_pass_in_steps_while_serving(tmp_path):
    db = tmp_path / "s.db"
    hashes = random_hashes(BASE, 41)
    stored = {}
    listing = tmp_path / "base.txt"
    listing.write_text("".join(f"{h}\n" for h in hashes))
    p = run("index", "--db", db, "--bank", "b", "--hash-list", listing)
    assert p.returncode == 0, p.stderr
    p = run("stats", "--db", db, "--json")
    assert json.loads(p.stdout)["pending"] == 0
    # `index --hash-list` names a hash by itself.
    stored.update({h: h for h in hashes})

    # Near-duplicates of the indexed hashes, so that lookups find both.
    more = [flip(hashes[i % BASE], 1 + i % 30, 500 + i) for i in range(10 * BATCH)]
    queries = [flip(h, 3 + i % 20, 900 + i) for i, h in enumerate(more[::400])]

    proc, url = start(db)
    try:
        for b in range(5):   # 5,000 pending: past the window of 4,096
            add(url, more[b * BATCH:(b + 1) * BATCH], b * BATCH)
            stored.update({f"i{b * BATCH + i}": h
                           for i, h in enumerate(more[b * BATCH:(b + 1) * BATCH])})
        seen_pending, end = False, time.monotonic() + 120
        while True:
            check_lookups(url, queries, stored)
            pending = call(url, "/v1/stats")["pending"]
            if pending == 0:
                break
            seen_pending = True
            assert time.monotonic() < end, "the pass did not end"
            time.sleep(0.05)
        assert seen_pending, "the pass took no steps in the background"
        check_lookups(url, queries, stored)

        # A second pass, cut short by SIGTERM.
        for b in range(5, 10):
            add(url, more[b * BATCH:(b + 1) * BATCH], b * BATCH)
            stored.update({f"i{b * BATCH + i}": h
                           for i, h in enumerate(more[b * BATCH:(b + 1) * BATCH])})
    finally:
        stop_server(proc)
    p = run("verify", "--db", db)
    assert p.returncode == 0, p.stdout + p.stderr
    left = json.loads(run("stats", "--db", db, "--json").stdout)["pending"]
    assert left > 0, "the pass ended before SIGTERM: make its steps smaller"

    # The next server goes on at its next small add.
    proc, url = start(db)
    try:
        check_lookups(url, queries, stored)
        add(url, [flip(more[0], 2, 7777)], 99999)
        stored["i99999"] = flip(more[0], 2, 7777)
        # (That add is past the pass's window: pending still, till the next.)
        end = time.monotonic() + 120
        while call(url, "/v1/stats")["pending"] != 1:
            assert time.monotonic() < end, "the pass did not end"
            time.sleep(0.05)
        check_lookups(url, queries, stored)
    finally:
        stop_server(proc)
    p = run("verify", "--db", db)
    assert p.returncode == 0, p.stdout + p.stderr
