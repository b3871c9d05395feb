"""pdqmatch stats, banks, delete, export, verify, compact."""
import json

from helpers import SAMPLES, lookup_rows, random_hashes, run


def make_store(tmp_path):
    db = tmp_path / "s.db"
    assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    return db


def test_stats(tmp_path):
    db = make_store(tmp_path)
    p = run("stats", "--db", db, "--json")
    s = json.loads(p.stdout)
    assert (s["banks"], s["contents"], s["hashes"], s["pending"], s["schema"]) == (1, 5, 5, 0, 5)
    assert s["pending_limit"] == 4096   # a small store: the floor of the pass window
    assert s["file_bytes"] == db.stat().st_size
    p = run("stats", "--db", db)
    assert "hashes:     5" in p.stdout


def test_banks_lifecycle(tmp_path):
    db = make_store(tmp_path)
    assert run("banks", "create", "safe", "--kind", "allow", "--threshold", "20",
               "--db", db).returncode == 0
    p = run("banks", "create", "safe", "--db", db)
    assert (p.returncode, p.stderr) == (1, "pdqmatch: bank 'safe' exists already\n")
    p = run("banks", "--db", db, "--json")
    banks = {b["name"]: b for b in json.loads(p.stdout)}
    assert banks["safe"]["kind"] == "allow" and banks["safe"]["threshold"] == 20
    assert banks["photos"]["contents"] == 5
    assert run("banks", "set", "photos", "--threshold", "5", "--db", db).returncode == 0
    p = run("banks", "--db", db)
    assert p.stdout.splitlines()[1].split()[:3] == ["photos", "5", "block"]
    assert run("banks", "delete", "photos", "--db", db).returncode == 0
    p = run("lookup", "--db", db, "--max-distance", "256",
            "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22")
    assert (p.returncode, p.stdout) == (1, "")
    p = run("banks", "delete", "photos", "--db", db)
    assert (p.returncode, p.stderr) == (1, "pdqmatch: no bank 'photos'\n")
    p = run("banks", "create", "bad/name", "--db", db)
    assert p.returncode == 1
    assert p.stderr == ("pdqmatch: a bank name holds only letters, digits, '.', '_' "
                        "and '-'\n")
    assert run("verify", "--db", db).returncode == 0


def test_delete(tmp_path):
    db = make_store(tmp_path)
    q = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
    assert [r[4] for r in lookup_rows(run("lookup", "--db", db, "--max-distance", "0", q).stdout)] \
        == ["bridge.jpg"]
    assert run("delete", "--db", db, "--bank", "photos", "--content-id", "bridge.jpg").returncode == 0
    p = run("lookup", "--db", db, "--max-distance", "0", q)
    assert (p.returncode, p.stdout) == (1, "")
    p = run("delete", "--db", db, "--bank", "photos", "--content-id", "bridge.jpg")
    assert (p.returncode, p.stderr) == (1, "pdqmatch: no content 'bridge.jpg' in bank 'photos'\n")
    p = run("delete", "--db", db, "--bank", "photos")
    assert p.returncode == 2
    assert run("verify", "--db", db).stdout.endswith("ok: 1 banks, 4 contents, 4 hashes\n")


def test_export_then_index_rebuilds_the_store(tmp_path):
    db = make_store(tmp_path)
    hs = random_hashes(50, 3)
    lst = tmp_path / "v.csv"
    # A three-frame "video" with timestamps and metadata, and plain hashes.
    lst.write_text("hash,content_id,timestamp,metadata\n" +
                   "".join(f'{hs[i]},vid,{i}.5,"{{""k"": 1}}"\n' for i in range(3)) +
                   "".join(f"{h},,,\n" for h in hs[3:]))
    assert run("index", "--db", db, "--bank", "list", "--hash-list", lst).returncode == 0
    copy = tmp_path / "copy.db"
    for bank in ("photos", "list"):
        exp = tmp_path / f"{bank}.csv"
        p = run("export", "--db", db, "--bank", bank)
        assert p.returncode == 0
        exp.write_text(p.stdout)
        assert run("index", "--db", copy, "--bank", bank, "--min-quality", "0",
                   "--hash-list", exp).returncode == 0
    a = run("export", "--db", db).stdout.splitlines()
    b = run("export", "--db", copy).stdout.splitlines()
    assert sorted(a) == sorted(b)
    assert '%s,100,vid,1.5,list,"{""k"": 1}",,,hashes' % hs[1] in a
    # Media items keep their digests through the move.
    street = next(line for line in b if ",street.jpg," in line)
    import hashlib
    data = (SAMPLES / "street.jpg").read_bytes()
    assert street.endswith(f",{hashlib.sha256(data).hexdigest()},{hashlib.md5(data).hexdigest()},"
                           "image")


def test_verify_and_compact(tmp_path):
    db = make_store(tmp_path)
    lst = tmp_path / "l.txt"
    lst.write_text("\n".join(random_hashes(3000, 9)) + "\n")
    assert run("index", "--db", db, "--bank", "list", "--hash-list", lst).returncode == 0
    p = run("verify", "--db", db)
    assert (p.returncode, p.stdout) == (0, f"{db}: ok: 2 banks, 3005 contents, 3005 hashes\n")
    out = tmp_path / "c.db"
    assert run("compact", "--db", db, out).returncode == 0
    assert run("verify", "--db", out).returncode == 0
    assert run("export", "--db", out).stdout == run("export", "--db", db).stdout
    p = run("compact", "--db", db, out)
    assert (p.returncode, p.stderr) == (2, f"pdqmatch: {out}: File exists\n")


def test_content_ids_round_trip(tmp_path):
    """Ids that are numbers are stored compactly; every id comes back as
    given, leading zeros and long numbers included."""
    db = tmp_path / "s.db"
    ids = ["0", "7", "007", "-5", "123456789012345678", "1234567890123456789",
           "99999999999999999999", "a,b", 'q"uote']
    hs = random_hashes(len(ids), 21)
    lst = tmp_path / "l.csv"
    lst.write_text("hash,content_id\n" + "".join(
        f'{h},"{i.replace(chr(34), chr(34) * 2)}"\n' for h, i in zip(hs, ids)))
    p = run("index", "--db", db, "--bank", "b", "--hash-list", lst)
    assert p.returncode == 0, p.stderr
    p = run("lookup", "--db", db, "--json", "--max-distance", "0", *hs)
    got = [json.loads(line)["matches"][0]["content_id"] for line in p.stdout.splitlines()]
    assert got == ids
    assert run("verify", "--db", db).returncode == 0
