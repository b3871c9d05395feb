"""kill -9 the server while clients add batches, at 25 random moments: each
time the store opens and verifies, every batch the server acknowledged is
there, and no batch is there in part."""
import csv
import io
import random
import re
import signal
import subprocess
import threading
import time

import requests

from helpers import BIN, random_hashes, run, drain

ROUNDS = int(__import__("os").environ.get("CRASH_ROUNDS", "25"))
CLIENTS = 4
BATCH = 20


def stored_ids(db):
    p = run("export", "--db", db, "--bank", "k")
    assert p.returncode == 0, p.stderr
    return {row["content_id"] for row in csv.DictReader(io.StringIO(p.stdout))}


def test_kill_9_while_adding(tmp_path):
    db = tmp_path / "s.db"
    assert run("banks", "create", "k", "--db", db).returncode == 0
    rng = random.Random(6)
    acked = set()          # batch names the server answered 200 for
    sent = set()           # batch names posted (answered or not)
    kills = 0
    for rnd in range(ROUNDS):
        proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0"],
                                stderr=subprocess.PIPE, text=True)
        m = re.search(r":(\d+)$", proc.stderr.readline().strip())
        drain(proc)
        assert m
        url = f"http://127.0.0.1:{m.group(1)}"
        stop = threading.Event()

        def client(c):
            b = 0
            session = requests.Session()
            while not stop.is_set():
                name = f"r{rnd}-c{c}-b{b}"
                hashes = random_hashes(BATCH, hash(name) & 0xffffffff)
                items = [{"hash": h, "content_id": f"{name}-{i}"} for i, h in enumerate(hashes)]
                sent.add(name)
                try:
                    r = session.post(url + "/v1/banks/k/hashes", json={"items": items}, timeout=10)
                except requests.RequestException:
                    return          # the server is gone
                if r.status_code == 200 and r.json()["added"] == BATCH:
                    acked.add(name)
                b += 1
                time.sleep(0.01)   # a steady load: the store stays small enough to check

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.2, 1.2))
        proc.send_signal(signal.SIGKILL)
        kills += 1
        proc.wait(timeout=60)
        stop.set()
        for t in threads:
            t.join(timeout=60)

        v = run("verify", "--db", db)
        assert v.returncode == 0, v.stderr
        ids = stored_ids(db)
        batches = {}
        for cid in ids:
            name, _, i = cid.rpartition("-")
            batches.setdefault(name, set()).add(int(i))
        missing = [b for b in acked if len(batches.get(b, ())) != BATCH]
        assert not missing, f"round {rnd}: acknowledged batches lost: {missing[:5]}"
        partial = [b for b, got in batches.items() if len(got) != BATCH]
        assert not partial, f"round {rnd}: batches stored in part: {partial[:5]}"
        assert set(batches) <= sent
    assert kills == ROUNDS
    assert len(acked) >= ROUNDS    # the load did get through, round after round
