"""GET /v1/banks/NAME/content pages (issue 13, finding 5): a cursor seeks to
its place, so the last page of a large bank costs what the first costs, and
a cursor past the end is an empty last page at once."""
import statistics
import subprocess
import time

import requests

from helpers import BIN, drain, random_hashes, run

N = 300_000


def test_finding_5_paging_cost_does_not_grow_with_the_cursor(tmp_path):
    hashes = random_hashes(N, seed=13)
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(hashes) + "\n")
    db = tmp_path / "s.db"
    assert run("index", "-q", "--db", db, "--bank", "big", "--hash-list", lst,
               timeout=600).returncode == 0
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0",
                             "--log-file", str(log)], stderr=subprocess.PIPE, text=True)
    drain(proc)
    try:
        for _ in range(200):
            if log.exists() and "listen=" in log.read_text():
                break
            time.sleep(0.05)
        port = log.read_text().split("listen=127.0.0.1:")[1].split()[0]
        url = f"http://127.0.0.1:{port}/v1/banks/big/content"
        s = requests.Session()

        def page(**params):
            t = time.perf_counter()
            r = s.get(url, params=params, timeout=60)
            assert r.status_code == 200, r.text
            return r.json(), time.perf_counter() - t

        # The pages are right: the first, one in the middle, the last.
        first, _ = page(limit=100)
        assert [i["content_id"] for i in first["items"]] == hashes[:100]
        middle, _ = page(limit=100, cursor=first["next_cursor"])
        assert [i["content_id"] for i in middle["items"]] == hashes[100:200]
        # One hash an item: an item's number is its line's index.
        last, _ = page(limit=100, cursor=N - 101)
        assert [i["content_id"] for i in last["items"]] == hashes[-100:]
        assert last["next_cursor"] is None
        for cursor in (N - 1, N, 4_000_000_000, 4_294_967_295):
            empty, _ = page(limit=1, cursor=cursor)
            assert empty == {"bank": "big", "items": [], "next_cursor": None}

        # And they cost the same (medians of 7; before, the last page of
        # this bank took about 10 times the first).
        t_first = statistics.median(page(limit=100)[1] for _ in range(7))
        t_last = statistics.median(page(limit=100, cursor=N - 101)[1] for _ in range(7))
        t_past = statistics.median(page(limit=1, cursor=4_000_000_000)[1] for _ in range(7))
        assert t_last <= 3 * t_first + 0.002, (t_first, t_last)
        assert t_past <= 3 * t_first + 0.002, (t_first, t_past)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
