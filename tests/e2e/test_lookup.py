"""pdqmatch lookup: exact near-duplicates of hashes, media and hash lists."""
import json

import pytest

from helpers import BAD, SAMPLES, distance, flip, lookup_rows, random_hashes, run


@pytest.fixture
def store(tmp_path):
    """A store with bank 'photos' (the samples) and bank 'list' (200 random
    hashes with ids h0..h199, metadata on h0)."""
    db = tmp_path / "s.db"
    assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    hs = random_hashes(200, 5)
    lst = tmp_path / "list.csv"
    meta = '"{""src"": ""x""}"'     # CSV quoting of {"src": "x"}
    lst.write_text("hash,content_id,metadata\n" +
                   "".join(f"{h},h{i},{meta if i == 0 else ''}\n"
                           for i, h in enumerate(hs)))
    p = run("index", "--db", db, "--bank", "list", "--hash-list", lst)
    assert p.returncode == 0, p.stderr
    return db, hs


def test_exact_against_brute_force(store):
    db, hs = store
    queries = [flip(hs[i], d, i) for i, d in enumerate([0, 1, 5, 15, 16, 17, 30, 31, 32, 40])]
    queries += random_hashes(5, 99)
    for r in (0, 16, 31, 32, 64, 100):
        p = run("lookup", "--db", db, "--bank", "list", "--max-distance", r, *queries)
        got = sorted((q, h, int(d), cid) for q, h, d, b, cid in lookup_rows(p.stdout))
        want = sorted((q, h, distance(q, h), f"h{i}") for q in queries
                      for i, h in enumerate(hs) if distance(q, h) <= r)
        assert got == want, f"radius {r}"
        assert p.returncode == (0 if want else 1)


def test_output_sorted_by_distance(store):
    db, hs = store
    p = run("lookup", "--db", db, "--max-distance", "256", hs[0])
    d = [int(row[2]) for row in lookup_rows(p.stdout)]
    assert d == sorted(d) and d[0] == 0 and len(d) == 205


def test_media_query_and_bank_thresholds(store):
    db, _ = store
    p = run("lookup", "--db", db, SAMPLES / "bridge-small.jpg")
    assert p.returncode == 0
    rows = lookup_rows(p.stdout)
    assert [(r[2], r[3], r[4]) for r in rows] == [("0", "photos", "bridge-small.jpg"),
                                                   ("14", "photos", "bridge.jpg")]
    # A bank's threshold is the default radius.
    assert run("banks", "set", "photos", "--threshold", "10", "--db", db).returncode == 0
    rows = lookup_rows(run("lookup", "--db", db, SAMPLES / "bridge-small.jpg").stdout)
    assert [r[4] for r in rows] == ["bridge-small.jpg"]


def test_dihedral_reports_the_orientation(store):
    db, _ = store
    p = run("lookup", "--db", db, "--bank", "photos", "--dihedral", "--json",
            SAMPLES / "bridge-rotate-90.jpg")
    assert p.returncode == 0
    o = json.loads(p.stdout)
    found = {m["content_id"]: (m["orientation"], m["distance"]) for m in o["matches"]}
    assert found["bridge-rotate-90.jpg"] == ("orig", 0)
    assert found["bridge.jpg"] == ("rot270", 12)
    # Without --dihedral the rotated original is far away.
    p = run("lookup", "--db", db, "--bank", "photos", SAMPLES / "bridge-rotate-90.jpg")
    assert [r[4] for r in lookup_rows(p.stdout)] == ["bridge-rotate-90.jpg"]


def test_json_fields_and_metadata(store):
    db, hs = store
    p = run("lookup", "--db", db, "--json", "--max-distance", "0", hs[0], hs[1])
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [o["query"] for o in objs] == [hs[0], hs[1]]
    m0, m1 = objs[0]["matches"][0], objs[1]["matches"][0]
    assert m0 == {"hash": hs[0], "distance": 0, "bank": "list", "bank_kind": "block",
                  "content_id": "h0", "quality": 100, "metadata": {"src": "x"},
                  "suppressed": False}
    assert m1["metadata"] is None


def test_hash_list_queries_and_exit_status(store, tmp_path):
    db, hs = store
    q = tmp_path / "q.txt"
    q.write_text(f"{hs[3]},100,x\n{random_hashes(1, 7)[0]}\n")
    p = run("lookup", "--db", db, "--max-distance", "0", "--hash-list", q)
    assert p.returncode == 0
    assert [r[4] for r in lookup_rows(p.stdout)] == ["h3"]
    p = run("lookup", "--db", db, "--max-distance", "0", random_hashes(1, 8)[0])
    assert (p.returncode, p.stdout) == (1, "")


@pytest.mark.parametrize("query,message", [
    ("0" * 63, "not a hash (a PDQ hash is 64 hex characters, not 63) nor a file"),
    ("z" + "0" * 63, "not a hash ('z' at position 1 of a hash is not a hex digit) nor a file"),
])
def test_bad_hash_queries(store, query, message):
    db, _ = store
    p = run("lookup", "--db", db, query)
    assert p.returncode == 2
    assert p.stderr == f"pdqmatch: {query}: {message}\n"


def test_bad_media_and_lists(store, tmp_path):
    db, hs = store
    p = run("lookup", "--db", db, BAD / "truncated.png", hs[0])
    assert p.returncode == 2     # an error, even though something matched
    assert p.stdout.count("\n") == 1
    assert p.stderr == (f"pdqmatch: {BAD / 'truncated.png'}: corrupt or truncated png "
                        "data (vipspng: libpng read error)\n")
    q = tmp_path / "q.txt"
    q.write_text("nonsense\n")
    p = run("lookup", "--db", db, "--hash-list", q)
    assert p.returncode == 2
    assert p.stderr == (f"pdqmatch: {q}:1: neither a hash nor a header naming a "
                        "'hash' column\n")


def test_unknown_bank_and_missing_store(store, tmp_path):
    db, hs = store
    p = run("lookup", "--db", db, "--bank", "nope", hs[0])
    assert (p.returncode, p.stderr) == (2, "pdqmatch: no bank 'nope'\n")
    p = run("lookup", "--db", tmp_path / "none.db", hs[0])
    assert (p.returncode, p.stderr) == (2, f"pdqmatch: {tmp_path / 'none.db'}: no store there\n")
    assert not (tmp_path / "none.db").exists()
    p = run("lookup", "--db", db, "--max-distance", "257", hs[0])
    assert p.returncode == 2
    assert p.stderr == ("pdqmatch: --max-distance takes a number from 0 to 256, not '257'\n"
                        "try 'pdqmatch lookup --help'\n")
