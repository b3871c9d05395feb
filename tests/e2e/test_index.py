"""pdqmatch index: media and hash lists into a store, idempotent, resumable,
bad input reported and skipped, and kill -9 at any moment leaves a store
that verifies and a job that a rerun completes."""
import os
import random
import signal
import subprocess
import time

import pytest

from helpers import BAD, BIN, PDQ, SAMPLES, random_hashes, run, stats


def test_index_directory_then_again(tmp_path):
    db = tmp_path / "s.db"
    p = run("index", "--db", db, "--bank", "photos", SAMPLES)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("indexed 5 items (5 hashes) into bank 'photos', "
                               "skipped 0 already stored, 0 below quality 50 and "
                               "1 not media, failed 0")
    assert stats(db)["hashes"] == 5
    # The same command again stores nothing twice.
    p = run("index", "--db", db, "--bank", "photos", SAMPLES)
    assert p.returncode == 0
    assert p.stdout.startswith("indexed 0 items (0 hashes) into bank 'photos', "
                               "skipped 5 already stored")
    assert stats(db)["contents"] == 5
    # Content ids are paths relative to the INPUT; export shows them.
    p = run("export", "--db", db)
    ids = sorted(line.split(",")[2] for line in p.stdout.splitlines()[1:])
    assert ids == ["bridge-rotate-90.jpg", "bridge-small.jpg", "bridge.jpg",
                   "pen-and-coaster.png", "street.jpg"]


def test_same_file_under_another_name_is_skipped(tmp_path):
    db = tmp_path / "s.db"
    a = tmp_path / "a"
    a.mkdir()
    (a / "one.jpg").write_bytes((SAMPLES / "street.jpg").read_bytes())
    (a / "two.jpg").write_bytes((SAMPLES / "street.jpg").read_bytes())
    p = run("index", "--db", db, "--bank", "b", a)
    assert p.returncode == 0
    assert "indexed 1 item (1 hash)" in p.stdout
    assert "skipped 1 already stored" in p.stdout


def test_named_bad_files_fail_but_the_rest_is_indexed(tmp_path):
    db = tmp_path / "s.db"
    p = run("index", "--db", db, "--bank", "b", BAD / "text.jpg",
            BAD / "truncated.jpg", SAMPLES / "street.jpg", tmp_path / "missing.jpg")
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        f"pdqmatch: {tmp_path / 'missing.jpg'}: No such file or directory",
        f"pdqmatch: {BAD / 'text.jpg'}: not an image format pdqmatch reads "
        "(JPEG, PNG, GIF, WebP, TIFF, PPM/PGM, HEIF/AVIF)",
        f"pdqmatch: {BAD / 'truncated.jpg'}: corrupt or truncated jpeg data "
        "(VipsJpeg: Premature end of input file)",
    ]
    assert "indexed 1 item" in p.stdout
    assert stats(db)["hashes"] == 1


def test_hash_list_forms(tmp_path):
    db = tmp_path / "s.db"
    hs = random_hashes(6, 1)
    bare = tmp_path / "bare.txt"
    bare.write_text(f"# a comment\n{hs[0]}\n\n{hs[1].upper()}\n")
    hasher = tmp_path / "hasher.txt"
    hasher.write_text(f"{hs[2]},100,photos/a.jpg\n{hs[3]},40,photos/b.jpg\n")
    csv = tmp_path / "list.csv"
    csv.write_text('quality,content_id,hash,notes\n'
                   f'90,"vid,1",{hs[4]},x\n'
                   f'91,"vid,1",{hs[5]},y\n')
    tsv = tmp_path / "list.tsv"
    tsv.write_text(f"hash\tcontent_id\tmetadata\n{hs[0]}\tm1\t{{\"source\": \"ncmec\"}}\n")
    p = run("index", "--db", db, "--bank", "b", "--hash-list", bare,
            "--hash-list", hasher, "--hash-list", csv, "--hash-list", tsv)
    assert p.returncode == 0, p.stderr
    # bare: 2 items named by their hashes; hasher: 2 (a list's qualities
    # are kept as given, 40 too); csv: rows of one id are one item of 2
    # hashes; tsv: 1.
    assert p.stdout.startswith("indexed 6 items (7 hashes) into bank 'b', skipped 0 "
                               "already stored, 0 below quality 50")
    out = run("export", "--db", db).stdout.splitlines()
    assert out[0] == "hash,quality,content_id,timestamp,bank,metadata,sha256,md5,kind"
    rows = [line for line in out[1:]]
    assert f"{hs[0]},100,{hs[0]},,b,,,,hashes" in rows    # bare hash: quality unknown -> 100
    assert f"{hs[1]},100,{hs[1]},,b,,,,hashes" in rows    # upper case in, lower case stored
    assert f"{hs[2]},100,photos/a.jpg,,b,,,,hashes" in rows
    assert f"{hs[3]},40,photos/b.jpg,,b,,,,hashes" in rows
    assert f'{hs[4]},90,"vid,1",,b,,,,hashes' in rows
    assert f'{hs[5]},91,"vid,1",,b,,,,hashes' in rows
    assert f'{hs[0]},100,m1,,b,"{{""source"": ""ncmec""}}",,,hashes' in rows


def test_hash_list_bad_lines_are_reported_and_skipped(tmp_path):
    db = tmp_path / "s.db"
    good = random_hashes(3, 2)
    lst = tmp_path / "mixed.txt"
    lst.write_text("\n".join([
        good[0],
        good[1][:63],                  # 63 characters
        "g" + good[1][1:],             # not hex
        f"{good[1]},101",              # quality out of range
        f"{good[1]},50,id,extra",      # too many fields
        "x" * 300000,                  # far too long
        good[2],
    ]) + "\n")
    p = run("index", "--db", db, "--bank", "b", "--hash-list", lst)
    assert p.returncode == 1
    name = str(lst)
    assert p.stderr.splitlines() == [
        f"pdqmatch: {name}:2: a PDQ hash is 64 hex characters, not 63",
        f"pdqmatch: {name}:3: 'g' at position 1 of a hash is not a hex digit",
        f"pdqmatch: {name}:4: quality is a whole number from 0 to 100, not '101'",
        f"pdqmatch: {name}:5: expected HASH[,QUALITY[,CONTENT_ID]], found 4 fields",
        f"pdqmatch: {name}:6: record longer than 262144 bytes",
    ]
    assert "indexed 2 items" in p.stdout
    p = run("export", "--db", db)
    assert sorted(l.split(",")[2] for l in p.stdout.splitlines()[1:]) == sorted([good[0], good[2]])


def test_hash_list_without_a_hash_column(tmp_path):
    lst = tmp_path / "l.csv"
    lst.write_text("name,quality\nfoo,100\n")
    p = run("index", "--db", tmp_path / "s.db", "--bank", "b", "--hash-list", lst)
    assert p.returncode == 1
    assert p.stderr == (f"pdqmatch: {lst}:1: neither a hash nor a header naming "
                        "a 'hash' column\n"
                        f"pdqmatch: {lst}:2: neither a hash nor a header naming "
                        "a 'hash' column\n")


def test_hash_list_from_stdin(tmp_path):
    db = tmp_path / "s.db"
    p = run("index", "--db", db, "--bank", "b", "--hash-list", "-",
            input="\n".join(random_hashes(100, 3)) + "\n")
    assert p.returncode == 0, p.stderr
    assert stats(db)["hashes"] == 100


@pytest.mark.parametrize("args,message", [
    (["x"], "--bank NAME is required for media and vPDQ lists"),
    (["--bank", "b"], "no INPUT, --hash-list or --vpdq-list given"),
    (["--bank", "bad name", "x"], "--bank 'bad name': a bank name holds only letters, "
                                  "digits, '.', '_' and '-'"),
    (["--bank", "b", "--min-quality", "101", "x"],
     "--min-quality takes a number from 0 to 100, not '101'"),
])
def test_usage_errors(tmp_path, args, message):
    p = run("index", "--db", tmp_path / "s.db", *args)
    assert p.returncode == 2
    assert p.stderr == f"pdqmatch: {message}\ntry 'pdqmatch index --help'\n"


def test_unusable_store_paths(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(16384))
    before = junk.read_bytes()
    p = run("index", "--db", junk, "--bank", "b", SAMPLES / "street.jpg")
    assert p.returncode == 2
    assert p.stderr.startswith(f"pdqmatch: {junk} is not a pdqmatch store")
    assert junk.read_bytes() == before              # nothing written
    # A path under a regular file cannot be created, even as root.
    p = run("index", "--db", junk / "s.db", "--bank", "b", SAMPLES / "street.jpg")
    assert p.returncode == 2
    assert p.stderr == f"pdqmatch: {junk / 's.db'}: Not a directory\n"
    p = run("index", "--db", tmp_path, "--bank", "b", SAMPLES / "street.jpg")
    assert p.returncode == 2
    assert p.stderr == f"pdqmatch: {tmp_path} is a directory, not a pdqmatch store\n"


def test_store_of_another_schema_version(tmp_path):
    db = tmp_path / "s.db"
    assert run("index", "--db", db, "--bank", "b", SAMPLES / "street.jpg").returncode == 0
    # The schema record: LMDB stores key "schema" then its 4-byte value,
    # on the live page and perhaps on older copies of it: change them all.
    data = db.read_bytes()
    assert data.count(b"schema\x05\x00\x00\x00") >= 1
    data = data.replace(b"schema\x05\x00\x00\x00", b"schema\x63\x00\x00\x00")
    db.write_bytes(data)
    for cmd in (["stats"], ["lookup", "0" * 64], ["verify"]):
        p = run(*cmd, "--db", db)
        assert p.returncode == 2
        assert p.stderr == (f"pdqmatch: {db} has store schema version 99; this "
                            "pdqmatch reads versions 1 to 5\n")
    p = run("index", "--db", db, "--bank", "b", SAMPLES / "bridge.jpg")
    assert p.returncode == 2
    assert data == db.read_bytes()                 # untouched


def count_contents(db):
    import json
    p = run("stats", "--db", db, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["contents"]


def test_kill_9_at_random_moments(tmp_path):
    """kill -9 the bulk indexer mid-run, 25 rounds: each time the store opens
    and verifies, the round's batch (one transaction) is there whole or not
    at all, and rerunning the same command completes it."""
    n = 8000
    db = tmp_path / "s.db"

    def command(i):
        lst = tmp_path / f"list{i}.txt"
        if not lst.exists():
            lines = (f"{h},100,r{i}-{k}" for k, h in enumerate(random_hashes(n, 100 + i)))
            lst.write_text("\n".join(lines) + "\n")
        return [BIN, "index", "-q", "--db", str(db), "--bank", "b",
                "--hash-list", str(lst)]

    # How long one round takes here, to kill inside it: a round into a store
    # that already holds one (making the store is a first round's alone).
    scratch = tmp_path / "scratch.db"
    cmd = command(0)
    subprocess.run([*cmd[:4], str(scratch), *cmd[5:]], check=True, timeout=300)
    rounds = []
    for i in (1, 2):
        cmd = command(i)
        start = time.monotonic()
        subprocess.run([*cmd[:4], str(scratch), *cmd[5:]], check=True, timeout=300)
        rounds.append(time.monotonic() - start)
    full = min(rounds)

    rng = random.Random(11)
    kills = 0
    for i in range(25):
        cmd = command(i)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.95) * full)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=300)
        v = run("verify", "--db", db)
        if i == 0 and v.returncode != 0:
            # Killed before its first commit: no store yet (no file, or an
            # LMDB file with nothing in it), which the rerun below makes.
            assert v.stderr in (f"pdqmatch: {db}: no store there\n",
                                f"pdqmatch: {db} is not a pdqmatch store (0 bytes)\n",
                                f"pdqmatch: {db} is an empty LMDB file, not a pdqmatch store\n")
        else:
            assert v.returncode == 0, v.stderr
            assert count_contents(db) in (n * i, n * (i + 1))   # whole or nothing
        # The same command again finishes the round: every line once.
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert count_contents(db) == n * (i + 1)
    assert run("verify", "--db", db).returncode == 0
    assert kills >= 20
    # Every hash is findable.
    sample = [h for i in range(25) for h in random_hashes(n, 100 + i)[::2000]]
    p = run("lookup", "--db", db, "--max-distance", "0", *sample)
    assert p.returncode == 0
    assert len(p.stdout.splitlines()) == len(sample)


def test_hash_list_digest_columns(tmp_path):
    db = tmp_path / "s.db"
    hs = random_hashes(3, 31)
    sha = "ab" * 32
    lst = tmp_path / "d.csv"
    lst.write_text(f"hash,content_id,sha256,md5\n{hs[0]},a,{sha},{'cd' * 16}\n"
                   f"{hs[1]},b,xyz,\n{hs[2]},c,{sha},\n")
    p = run("index", "--db", db, "--bank", "b", "--hash-list", lst)
    assert p.returncode == 1
    assert p.stderr == f"pdqmatch: {lst}:3: SHA-256 is 64 hex characters, not 'xyz'\n"
    # c has a's SHA-256: the same file, skipped.
    assert "indexed 1 item" in p.stdout and "skipped 1 already stored" in p.stdout
    rows = run("export", "--db", db).stdout.splitlines()
    assert rows[1] == f"{hs[0]},100,a,,b,,{sha},{'cd' * 16},hashes"
