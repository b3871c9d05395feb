"""A full disk is a state (issue 13, finding 4): the store on a small tmpfs
filled to ENOSPC answers adds 507 insufficient_storage at once, /readyz
says writable false, lookups go on; once space is freed adds succeed
without a restart, nothing acknowledged is lost and verify passes.
Needs root (to mount the tmpfs): CI runs as root."""
import json
import os
import subprocess
import time

import pytest
import requests

from helpers import BIN, drain, random_hashes, run, small_tmpfs


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "disk", "12m") as disk:
        yield disk


def test_finding_4_full_disk_is_a_recoverable_state(tmp_path, small_disk):
    db = small_disk / "s.db"
    first = tmp_path / "first.txt"
    first.write_text("hash,content_id\n" + random_hashes(1, seed=40)[0] + ",first\n")
    assert run("index", "--db", db, "--bank", "b", "--hash-list", first).returncode == 0
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0",
                             "--log-format", "json", "--log-file", str(log)],
                            stderr=subprocess.PIPE, text=True)
    drain(proc)
    try:
        for _ in range(200):
            if log.exists() and '"listen"' in log.read_text():
                break
            time.sleep(0.05)
        url = "http://127.0.0.1:" + json.loads(log.read_text().splitlines()[0])["listen"] \
            .split(":")[1]
        s = requests.Session()
        # Leave about 1.5 MB free, then add until the disk is full.
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        with open(small_disk / "ballast", "wb") as f:
            f.write(b"\0" * (free - 1_500_000))
        acked, full_reply, n = [], None, 0
        hashes = iter(random_hashes(400_000, seed=4))
        while full_reply is None and n < 2000:
            items = [{"hash": next(hashes), "content_id": f"c{n}-{i}"} for i in range(200)]
            r = s.post(url + "/v1/banks/b/hashes", json={"items": items}, timeout=30)
            if r.status_code == 200:
                acked += items
            else:
                full_reply = r
            n += 1
        assert full_reply is not None, "the disk never filled"
        assert full_reply.status_code == 507, full_reply.text
        assert full_reply.json() == {"error": {"code": "insufficient_storage",
                                               "message": "disk full"}}
        assert len(acked) > 0

        # The state: one-item adds fail fast, reads go on, readiness says so.
        times = []
        for i in range(5):
            t = time.perf_counter()
            r = s.post(url + "/v1/banks/b/hashes", timeout=30,
                       json={"items": [{"hash": next(hashes), "content_id": f"one{i}"}]})
            times.append(time.perf_counter() - t)
            assert r.status_code == 507
        assert sorted(times)[2] < 0.05, times
        r = s.get(url + "/readyz", timeout=10)
        assert r.status_code == 200 and r.json()["writable"] is False
        assert "pdqmatch_store_writable 0\n" in s.get(url + "/metrics", timeout=10).text
        r = s.get(url + "/v1/lookup", params={"hash": acked[0]["hash"], "max_distance": 0},
                  timeout=10)
        assert r.status_code == 200 and r.json()["matches"][0]["content_id"] == "c0-0"

        # Space freed: writes resume by themselves (within the 5 s backoff).
        (small_disk / "ballast").unlink()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            items = [{"hash": next(hashes), "content_id": f"after-{time.monotonic()}"}]
            r = s.post(url + "/v1/banks/b/hashes", json={"items": items}, timeout=30)
            if r.status_code == 200:
                acked += items
                break
            assert r.status_code == 507
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        for i in range(5):   # and go on (the pending hashes get indexed)
            items = [{"hash": next(hashes), "content_id": f"more{i}-{j}"} for j in range(200)]
            assert s.post(url + "/v1/banks/b/hashes", json={"items": items},
                          timeout=30).status_code == 200
            acked += items
        assert s.get(url + "/readyz", timeout=10).json()["writable"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["msg"] for r in records].count("disk full") == 1
    assert [r["msg"] for r in records].count("disk space is back") == 1
    assert not [r for r in records if r["msg"] == "server error"]
    p = run("verify", "--db", db)
    assert p.returncode == 0, p.stderr
    out = run("export", "--db", db, "--format", "jsonl")
    assert out.returncode == 0
    stored = {json.loads(line).get("content_id") for line in out.stdout.splitlines()}
    missing = [a["content_id"] for a in acked if a["content_id"] not in stored]
    assert not missing, missing[:5]
