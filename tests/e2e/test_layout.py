"""A store that grows changes the layout of its postings (index/README.md,
"Layouts"): once it holds PDQM_WIDE_AT hashes, its new entries are posted
in the wide layout, the older ones stay narrow, and lookups probe both.

kill -9 `pdqmatch index` while it adds the hashes that cross the line and
indexes them (the pass that makes the change): after each kill the store
verifies and holds nothing in part, the run started again finishes the job,
and then lookups equal a brute force at every radius from 0 to 64, across
both layouts."""
import json
import os
import random
import signal
import subprocess
import time

from helpers import BIN, flip, random_hashes, run

FIRST = 20000
SECOND = 20000
WIDE_AT = "30000"


def env_wide():
    return dict(os.environ, PDQM_WIDE_AT=WIDE_AT)


def stats(db):
    p = run("stats", "--db", db, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def verify(db):
    p = run("verify", "--db", db)
    assert p.returncode == 0, p.stdout + p.stderr


def write_list(path, hashes):
    path.write_text("".join(h + "\n" for h in hashes))


def test_kill_9_during_the_layout_change(tmp_path):
    db = tmp_path / "s.db"
    rng = random.Random(19)
    base = random_hashes(FIRST + SECOND, 19)
    # Near-duplicates of earlier hashes in the second half, so that queries
    # find matches in both layouts.
    hashes = base[:FIRST] + [
        flip(base[rng.randrange(FIRST)], rng.randrange(1, 40), i) if i % 4 == 0 else base[FIRST + i]
        for i in range(SECOND)]
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    write_list(first, hashes[:FIRST])
    write_list(second, hashes[FIRST:])

    p = subprocess.run([BIN, "index", "--db", db, "--bank", "b", "--hash-list", first],
                       capture_output=True, text=True, env=env_wide())
    assert p.returncode == 0, p.stderr
    assert stats(db)["wide_from"] == -1            # 20,000 hashes: narrow
    verify(db)

    # Kill the second run at moments spread over it, until one finishes.
    kills, finished = 0, False
    delays = [0.05, 0.15, 0.3, 0.5, 0.7, 0.9, 1.2, 1.6, 2.0, 3.0]
    for delay in delays:
        proc = subprocess.Popen([BIN, "index", "--db", str(db), "--bank", "b",
                                 "--hash-list", str(second)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env_wide())
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        verify(db)
        st = stats(db)
        assert st["wide_from"] in (-1, FIRST)
        # All of the second list or none of it: one batch, one transaction.
        assert st["hashes"] in (FIRST, FIRST + SECOND)
        if st["wide_from"] == FIRST and st["pending"] == 0:
            finished = True
            break
    assert kills > 0
    if not finished:
        p = subprocess.run([BIN, "index", "--db", db, "--bank", "b", "--hash-list", second],
                           capture_output=True, text=True, env=env_wide())
        assert p.returncode == 0, p.stderr
    st = stats(db)
    assert (st["hashes"], st["pending"], st["wide_from"]) == (FIRST + SECOND, 0, FIRST)
    verify(db)

    # Lookups at every radius equal a brute force over both layouts.
    queries = [flip(hashes[rng.randrange(len(hashes))], rng.randrange(0, 64), 1000 + i)
               for i in range(30)] + random_hashes(5, 20)
    ints = [int(h, 16) for h in hashes]
    dist = {q: [(h, bin(int(q, 16) ^ v).count("1")) for h, v in zip(hashes, ints)]
            for q in queries}
    for r in range(0, 65):
        p = run("lookup", "--db", db, "--max-distance", str(r), "--json", *queries)
        assert p.returncode in (0, 1), p.stderr      # 1: no match
        got = set()
        for line in p.stdout.splitlines():
            o = json.loads(line)
            for m in o["matches"]:
                got.add((o["query"], m["hash"], m["distance"]))
        want = {(q, h, d) for q in queries for h, d in dist[q] if d <= r}
        assert got == want, f"r={r}: {len(want - got)} missing, {len(got - want)} extra"
