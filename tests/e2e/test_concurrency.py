"""pdqmatch serve under load: 8 clients adding and 8 looking up at once for
30 s.  Nothing is lost or duplicated, every lookup of a hash already added
finds it, no request fails, and the store verifies afterwards."""
import random
import threading
import time

import requests

from helpers import run

SECONDS = 30


def test_8_writers_8_readers(server):
    url, proc, db = server
    assert requests.post(url + "/v1/banks", json={"name": "load"}, timeout=10).status_code == 201
    stop = time.monotonic() + SECONDS
    added = {}                     # content id -> hash
    lock = threading.Lock()
    errors = []
    counts = {"adds": 0, "lookups": 0}

    def writer(w):
        s = requests.Session()
        rng = random.Random(w)
        n = 0
        while time.monotonic() < stop:
            items = []
            for _ in range(10):
                h = f"{rng.getrandbits(256):064x}"
                items.append({"hash": h, "content_id": f"w{w}-{n}"})
                n += 1
            r = s.post(url + "/v1/banks/load/hashes", json={"items": items}, timeout=30)
            if r.status_code != 200 or r.json()["added"] != 10:
                errors.append(("add", r.status_code, r.text))
                return
            with lock:
                for it in items:
                    added[it["content_id"]] = it["hash"]
                counts["adds"] += 1

    def reader(i):
        s = requests.Session()
        rng = random.Random(100 + i)
        while time.monotonic() < stop:
            with lock:
                if not added:
                    continue
                cid, h = rng.choice(list(added.items())[-500:])
            r = s.get(url + "/v1/lookup", params={"hash": h, "banks": "load",
                                                  "max_distance": 0}, timeout=30)
            if r.status_code != 200 or cid not in [m["content_id"] for m in r.json()["matches"]]:
                errors.append(("lookup", cid, r.status_code, r.text[:200]))
                return
            with lock:
                counts["lookups"] += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)] + \
              [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts["adds"] > 100 and counts["lookups"] > 100, counts
    bank = requests.get(url + "/v1/banks/load", timeout=10).json()
    assert bank["contents"] == bank["hashes"] == len(added)
    listed, cursor = [], None
    while True:
        params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = requests.get(url + "/v1/banks/load/content", params=params, timeout=60).json()
        listed += [(x["content_id"], x["hashes"][0]["hash"]) for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(listed) == len(set(listed)) == len(added)
    assert dict(listed) == added
    assert run("verify", "--db", db).returncode == 0
