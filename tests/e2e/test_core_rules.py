"""The domain rules that live in the library once (core/ingest.h,
core/policy.h), so the CLI and the service agree.  Each test is named after
the finding of issue 12 it reproduces and failed before the rule moved."""
import json
import os
import re
import signal
import subprocess
import urllib.parse

import pytest
import requests

from helpers import BIN, SAMPLES, random_hashes, run, stats, drain, log_text

BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


class Server:
    """pdqmatch serve on a free loopback port over db; stopped cleanly."""

    def __init__(self, db, *extra):
        self.proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0",
                                      *map(str, extra)], stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        drain(self.proc)
        m = re.search(r"listen=127\.0\.0\.1:(\d+)$", line.strip())
        assert m, line
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=60) == 0, log_text(self.proc)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()


@pytest.fixture
def serve():
    started = []

    def start(db, *extra):
        s = Server(db, *extra)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def export_rows(db, *args):
    return run("export", "--db", db, *args).stdout.splitlines()[1:]


def flip_low(h, bits):
    return f"{int(h, 16) ^ ((1 << bits) - 1):064x}"


# 1 -------------------------------------------------------------------------

def test_finding_1_second_bare_hash_list_is_stored(tmp_path):
    db = tmp_path / "c.db"
    hs = random_hashes(10, 11)
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.write_text("".join(h + "\n" for h in hs[:5]))
    d2.write_text("".join(h + "\n" for h in hs[5:]))
    p = run("index", "--db", db, "--bank", "p", "--hash-list", d1)
    assert p.returncode == 0, p.stderr
    p = run("index", "--db", db, "--bank", "p", "--hash-list", d2)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("indexed 5 items (5 hashes)")
    assert stats(db)["hashes"] == 10
    # The id of a row without one is its hash: the same list again stores nothing.
    p = run("index", "--db", db, "--bank", "p", "--hash-list", d1)
    assert p.stdout.startswith("indexed 0 items (0 hashes) into bank 'p', skipped 5 already")
    assert sorted(r.split(",")[2] for r in export_rows(db)) == sorted(hs)


def test_finding_1_two_hash_lists_in_one_run_and_quality_lines(tmp_path):
    db = tmp_path / "c.db"
    hs = random_hashes(6, 12)
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.write_text("".join(f"{h},90\n" for h in hs[:3]))
    d2.write_text("".join(f"{h},80\n" for h in hs[3:]))
    p = run("index", "--db", db, "--bank", "p", "--hash-list", d1, "--hash-list", d2)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("indexed 6 items (6 hashes)")


# 2 -------------------------------------------------------------------------

def test_finding_2_rows_of_one_id_anywhere_are_one_item(tmp_path):
    db = tmp_path / "c.db"
    hs = random_hashes(4, 13)
    lst = tmp_path / "l.csv"
    lst.write_text("hash,content_id\n" + f"{hs[0]},vidA\n{hs[1]},vidB\n{hs[2]},vidA\n{hs[3]},vidB\n")
    p = run("index", "--db", db, "--bank", "p", "--hash-list", lst)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("indexed 2 items (4 hashes) into bank 'p', skipped 0 already")
    rows = [r.split(",") for r in export_rows(db)]
    # Each item keeps its hashes in list order.
    assert [(r[2], r[0]) for r in rows] == [("vidA", hs[0]), ("vidA", hs[2]),
                                            ("vidB", hs[1]), ("vidB", hs[3])]


def test_finding_2_the_api_groups_as_the_cli_does(tmp_path, serve):
    """POST .../hashes and a hash list go through one grouping rule: rows of
    one id anywhere are one item, a row without an id is named by its hash,
    and the same bare hash twice is one item."""
    hs = random_hashes(5, 15)
    rows = [(hs[0], "vidA"), (hs[1], "vidB"), (hs[2], None), (hs[3], "vidA"),
            (hs[2], None), (hs[4], "vidB")]
    cli_db, api_db = tmp_path / "cli.db", tmp_path / "api.db"
    lst = tmp_path / "l.csv"
    lst.write_text("hash,content_id\n" + "".join(f"{h},{i or ''}\n" for h, i in rows))
    p = run("index", "--db", cli_db, "--bank", "p", "--hash-list", lst)
    assert p.returncode == 0, p.stderr
    assert run("banks", "--db", api_db, "create", "p").returncode == 0
    s = serve(api_db)
    items = [{"hash": h, **({"content_id": i} if i else {})} for h, i in rows]
    r = requests.post(s.url + "/v1/banks/p/hashes", json={"items": items}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 5
    s.stop()
    # (A list stores its rows without ids as they come, the others at its
    # end: the items are the same, their order in the store is not.)
    cli_rows = sorted(tuple(x.split(",")[2::-2]) for x in export_rows(cli_db))
    assert cli_rows == sorted(tuple(x.split(",")[2::-2]) for x in export_rows(api_db))
    assert cli_rows == sorted([("vidA", hs[0]), ("vidA", hs[3]), ("vidB", hs[1]),
                               ("vidB", hs[4]), (hs[2], hs[2])])


# 3 -------------------------------------------------------------------------

def test_finding_3_bom_and_crlf_keep_the_first_column(tmp_path):
    db = tmp_path / "c.db"
    h = random_hashes(1, 14)[0]
    lst = tmp_path / "l.csv"
    lst.write_bytes(b"\xef\xbb\xbfcontent_id,hash,metadata\r\n" +
                    f'partner-17,{h},"{{""case"":5}}"\r\n'.encode())
    p = run("index", "--db", db, "--bank", "p", "--hash-list", lst)
    assert p.returncode == 0, p.stderr
    assert export_rows(db) == [f'{h},100,partner-17,,p,"{{""case"":5}}",,,hashes']


# 4 -------------------------------------------------------------------------

def test_finding_4_file_names_become_ids_the_api_reaches(tmp_path, serve):
    db = tmp_path / "c.db"
    d = tmp_path / "in"
    d.mkdir()
    names = [b"plain.jpg", b"caf\xe9.jpg", b"new\nline.jpg", b"100%.jpg"]
    for i, n in enumerate(names):
        src = ["bridge.jpg", "street.jpg", "pen-and-coaster.png", "bridge-small.jpg"][i]
        with open(os.path.join(os.fsencode(d), n), "wb") as f:
            f.write((SAMPLES / src).read_bytes())
    p = run("index", "--db", db, "--bank", "b", d)
    assert p.returncode == 0, p.stderr
    s = serve(db)
    listing = requests.get(s.url + "/v1/banks/b/content?limit=1000", timeout=10).json()["items"]
    ids = sorted(i["content_id"] for i in listing)
    # Bytes an id cannot hold, and '%' itself, are %XX: reversible.
    assert ids == ["100%25.jpg", "caf%E9.jpg", "new%0Aline.jpg", "plain.jpg"]
    assert requests.get(s.url + "/v1/banks/b", timeout=10).json()["contents"] == len(ids)
    for cid in ids:
        u = s.url + "/v1/banks/b/content/" + urllib.parse.quote(cid, safe="")
        assert requests.get(u, timeout=10).status_code == 200, cid
    # file_matches names them too.
    r = requests.post(s.url + "/v1/lookup/media", data=(SAMPLES / "street.jpg").read_bytes(),
                      headers={"Content-Type": "image/jpeg"}, timeout=30).json()
    assert [m["content_id"] for m in r["file_matches"]] == ["caf%E9.jpg"]
    assert "caf%E9.jpg" in [m["content_id"] for m in r["matches"]]
    u = s.url + "/v1/banks/b/content/" + urllib.parse.quote("new%0Aline.jpg", safe="")
    assert requests.delete(u, timeout=10).status_code == 200


# 6 -------------------------------------------------------------------------

def blank_png(path):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=black:s=64x64", "-frames:v", "1", str(path)], check=True)


def test_finding_6_degenerate_hashes_are_refused(tmp_path, serve):
    db = tmp_path / "c.db"
    good = random_hashes(1, 15)[0]
    lst = tmp_path / "l.txt"
    lst.write_text(f"{0:064x}\n{good}\n{1:064x},100\n{good[:-1]}0,0\n")
    p = run("index", "--db", db, "--bank", "p", "--hash-list", lst)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        f"pdqmatch: {lst}:1: a hash with 0 bits set (fewer than 16: a blank image, or a "
        "hasher's error value) matches nothing it resembles",
        f"pdqmatch: {lst}:3: a hash with 1 bits set (fewer than 16: a blank image, or a "
        "hasher's error value) matches nothing it resembles",
        f"pdqmatch: {lst}:4: a hash of quality 0 (a blank or flat image) matches nothing it "
        "resembles",
    ]
    assert "indexed 1 item (1 hash)" in p.stdout and "failed 3 (3 degenerate)" in p.stdout
    blank = tmp_path / "black.png"
    blank_png(blank)
    # A blank image is not looked up: it would "match" the all-zero hash.
    p = run("lookup", "--db", db, "--max-distance", "256", blank)
    assert p.returncode == 1
    assert "not looked up: a hash of quality 0" in p.stderr
    s = serve(db)
    r = requests.post(s.url + "/v1/banks/p/media", data=blank.read_bytes(),
                      headers={"Content-Type": "image/png"}, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "degenerate_hash")
    r = requests.post(s.url + "/v1/banks/p/hashes",
                      json={"items": [{"hash": "0" * 64, "content_id": "z"}]}, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "degenerate_hash")
    r = requests.post(s.url + "/v1/lookup/media?max_distance=256", data=blank.read_bytes(),
                      headers={"Content-Type": "image/png"}, timeout=30).json()
    assert r["matches"] == [] and r["not_matched"].startswith("a hash of quality 0")
    assert stats(db)["hashes"] == 1


# 7 -------------------------------------------------------------------------

def test_finding_7_far_allow_entry_does_not_suppress(tmp_path, serve):
    db = tmp_path / "c.db"
    assert run("banks", "--db", db, "create", "safe", "--kind", "allow",
               "--threshold", "10").returncode == 0
    far = flip_low(BRIDGE, 40)
    (tmp_path / "a").write_text(f"hash,content_id\n{far},good\n")
    (tmp_path / "b").write_text(f"hash,content_id\n{BRIDGE},bad\n")
    assert run("index", "--db", db, "--bank", "safe", "--hash-list", tmp_path / "a").returncode == 0
    assert run("index", "--db", db, "--bank", "blk", "--hash-list", tmp_path / "b").returncode == 0
    s = serve(db)
    r = requests.get(s.url + f"/v1/lookup?hash={BRIDGE}&max_distance=48", timeout=10).json()
    got = {m["content_id"]: (m["distance"], m["suppressed"]) for m in r["matches"]}
    assert got == {"bad": (0, False), "good": (40, False)}
    # Within the allow bank's own threshold it does suppress, in CLI and API alike.
    near = flip_low(BRIDGE, 35)     # 5 bits from the allow entry, 35 from the block one
    r = requests.get(s.url + f"/v1/lookup?hash={near}&max_distance=48", timeout=10).json()
    assert {m["content_id"]: m["suppressed"] for m in r["matches"]} == {"bad": True,
                                                                       "good": False}
    p = run("lookup", "--db", db, "--max-distance", "48", near)
    assert p.returncode == 1          # its only block match is suppressed
    assert f"{near},{BRIDGE},35,blk,bad,suppressed" in p.stdout.splitlines()
    p = run("lookup", "--db", db, "--max-distance", "48", BRIDGE)
    assert p.returncode == 0
    assert not any(line.endswith(",suppressed") for line in p.stdout.splitlines())


# 11 ------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["banks=", "banks=,,"])
def test_finding_11_empty_bank_filter_is_refused(server, query):
    url, proc, db = server
    r = requests.get(url + f"/v1/lookup?hash={BRIDGE}&{query}", timeout=10)
    assert r.status_code == 400
    assert "names no bank" in r.json()["error"]["message"]


def test_finding_11_empty_bank_list_is_refused(server):
    url, proc, db = server
    r = requests.post(url + "/v1/lookup", json={"hashes": [BRIDGE], "banks": []}, timeout=10)
    assert r.status_code == 400
    assert "names no bank" in r.json()["error"]["message"]
    p = run("lookup", "--db", db, "--bank", ",", BRIDGE)
    assert p.returncode == 2


# 12 ------------------------------------------------------------------------

def test_finding_12_serve_refuses_a_missing_store(tmp_path, serve):
    p = run("serve", "--db", tmp_path / "typo.db", "--listen", "127.0.0.1:0", timeout=30)
    assert p.returncode == 2
    assert p.stderr == (f"pdqmatch: {tmp_path / 'typo.db'}: no store there "
                        "(give --create to make a new one)\n")
    assert not (tmp_path / "typo.db").exists()
    s = serve(tmp_path / "new.db", "--create")
    assert requests.get(s.url + "/readyz", timeout=10).status_code == 200


# 13 ------------------------------------------------------------------------

def test_finding_13_dihedral_one_match_per_entry(server):
    url, proc, db = server
    img = (SAMPLES / "bridge-rotate-90.jpg").read_bytes()
    # At 256 bits every orientation reaches every entry: one answer each.
    r = requests.post(url + "/v1/lookup/media?dihedral=1&max_distance=256", data=img,
                      headers={"Content-Type": "image/jpeg"}, timeout=30).json()
    ids = [m["content_id"] for m in r["matches"]]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == stats(db)["hashes"]
    best = {m["content_id"]: m for m in r["matches"]}["bridge.jpg"]
    p = run("lookup", "--db", db, "--json", "--dihedral", "--max-distance", "256",
            SAMPLES / "bridge-rotate-90.jpg")
    cli = json.loads(p.stdout)["matches"]
    assert [(m["content_id"], m["distance"], m["orientation"]) for m in cli] == \
        [(m["content_id"], m["distance"], m["orientation"]) for m in r["matches"]]
    assert best["orientation"] != "orig"


def test_finding_13_video_frames_selected_alike(tmp_path, serve):
    """POST .../media stores the frames `pdqmatch index` stores."""
    from helpers import VIDEOS
    video = VIDEOS / "doorknob-hd-no-bar.mp4"    # two frames of quality under 50
    db1, db2 = tmp_path / "a.db", tmp_path / "b.db"
    assert run("index", "--db", db1, "--bank", "v", video).returncode == 0
    assert run("banks", "--db", db2, "create", "v").returncode == 0
    s = serve(db2)
    r = requests.post(s.url + "/v1/banks/v/media?content_id=doorknob-hd-no-bar.mp4",
                      data=video.read_bytes(), headers={"Content-Type": "video/mp4"}, timeout=120)
    assert r.status_code == 201, r.text
    s.stop()
    a = [x.split(",")[:4] for x in export_rows(db1)]
    b = [x.split(",")[:4] for x in export_rows(db2)]
    assert a == b


# 8 -------------------------------------------------------------------------

def test_finding_8_nul_in_the_path_or_a_parameter_is_400(tmp_path, serve):
    db = tmp_path / "c.db"
    hs = random_hashes(2, 16)
    lst = tmp_path / "l.csv"
    lst.write_text(f"hash,content_id\n{hs[0]},victim\n{hs[1]},other\n")
    assert run("index", "--db", db, "--bank", "t", "--hash-list", lst).returncode == 0
    s = serve(db)
    for method, path in [("DELETE", "/v1/banks/t%00/content/a..b"),
                         ("DELETE", "/v1/banks/t/content/victim%00.jpg"),
                         ("DELETE", "/v1/banks/t%00"),
                         ("GET", f"/v1/lookup?hash={hs[0]}%00"),
                         ("GET", f"/v1/lookup?hash={hs[0]}&banks=t%00x"),
                         ("GET", "/v1/banks/t/content?cursor=0%00")]:
        r = requests.request(method, s.url + path, timeout=10)
        assert r.status_code == 400, (method, path, r.text)
        assert r.json()["error"]["message"] == "a NUL byte (%00) in the path or a parameter"
    s.stop()
    assert sorted(r.split(",")[2] for r in export_rows(db)) == ["other", "victim"]


# 9 -------------------------------------------------------------------------

def test_finding_9_two_file_fields_are_refused(tmp_path, serve):
    db = tmp_path / "c.db"
    assert run("banks", "--db", db, "create", "b").returncode == 0
    s = serve(db)
    files = [("file", ("a.jpg", (SAMPLES / "bridge.jpg").read_bytes(), "image/jpeg")),
             ("file", ("b.jpg", (SAMPLES / "street.jpg").read_bytes(), "image/jpeg"))]
    r = requests.post(s.url + "/v1/banks/b/media", files=files, timeout=30)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ("the form has more than one field 'file': "
                                            "send one file a request")
    r = requests.post(s.url + "/v1/hash", files=files, timeout=30)
    assert r.status_code == 400
    # One file is fine.
    r = requests.post(s.url + "/v1/banks/b/media", files=files[:1], timeout=30)
    assert r.status_code == 201, r.text
    s.stop()
    assert len(export_rows(db)) == 1


# 5 and 10: export and import lose nothing ---------------------------------

BIG_META = {"note": "x" * 60000, "t": 1700000000.5, "max": 1.7976931348623157e308,
            "nested": {"a": [1, 2.25, None, True], "s": "caf\u00e9 \"q\""}}


def build_rich_store(tmp_path, db):
    """Images, a video with timestamps, hash items, block and allow banks with
    their own thresholds, awkward ids, a 60 KB metadata object, big and
    fractional numbers, items of quality 30."""
    from helpers import VIDEOS
    d = tmp_path / "media"
    d.mkdir()
    for name, src in [(b"plain.jpg", "bridge.jpg"), (b"new\nline, \"q\".jpg", "street.jpg"),
                      (b"caf\xc3\xa9.png", "pen-and-coaster.png")]:
        with open(os.path.join(os.fsencode(d), name), "wb") as f:
            f.write((SAMPLES / src).read_bytes())
    assert run("index", "--db", db, "--bank", "photos", d).returncode == 0
    assert run("index", "--db", db, "--bank", "videos",
               VIDEOS / "chair-19-sd-bar.mp4").returncode == 0
    assert run("banks", "--db", db, "create", "safe", "--kind", "allow",
               "--threshold", "12").returncode == 0
    assert run("banks", "--db", db, "create", "strict", "--threshold", "8").returncode == 0
    hs = random_hashes(4, 21)
    meta = json.dumps(BIG_META).replace('"', '""')
    small = json.dumps({"t": 1700000000.5, "max": 1.7976931348623157e308}).replace('"', '""')
    lst = tmp_path / "l.csv"
    lst.write_text("hash,quality,content_id,bank,metadata\n"
                   f'{hs[0]},30,"a,b ""quoted"" \u00fc",strict,"{small}"\n'
                   f'{hs[1]},90,big,strict,"{meta}"\n'
                   f'{flip_low(BRIDGE, 3)},80,known-good,safe,\n'
                   f'{hs[2]},30,low,strict,\n', encoding="utf-8")
    p = run("index", "--db", db, "--hash-list", lst)
    assert p.returncode == 0, p.stderr
    return hs


def test_finding_5_jsonl_round_trip_is_byte_identical(tmp_path, serve):
    from helpers import VIDEOS
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    hs = build_rich_store(tmp_path, a)
    e1 = run("export", "--db", a, "--format", "jsonl")
    assert e1.returncode == 0, e1.stderr
    (tmp_path / "e1.jsonl").write_text(e1.stdout)
    p = run("import", "--db", b, tmp_path / "e1.jsonl")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("imported 8 items")
    e2 = run("export", "--db", b, "--format", "jsonl")
    assert e2.stdout == e1.stdout
    # Importing again stores nothing twice.
    p = run("import", "--db", b, tmp_path / "e1.jsonl")
    assert "imported 0 items" in p.stdout and "skipped 8 already stored" in p.stdout
    assert run("export", "--db", b, "--format", "jsonl").stdout == e1.stdout
    lines = [json.loads(x) for x in e1.stdout.splitlines()]
    banks = {x["name"]: (x["threshold"], x["kind"]) for x in lines if x.get("type") == "bank"}
    assert banks == {"photos": (31, "block"), "videos": (31, "block"), "safe": (12, "allow"),
                     "strict": (8, "block")}
    items = {x["content_id"]: x for x in lines if x.get("type") == "item"}
    assert items["big"]["metadata"] == BIG_META
    assert items["a,b \"quoted\" \u00fc"]["hashes"][0]["quality"] == 30
    assert items["chair-19-sd-bar.mp4"]["kind"] == "video"
    assert items["new%0Aline, \"q\".jpg"]["kind"] == "image"

    # Every lookup answers the same on both stores, CLI and API.
    queries = [BRIDGE, flip_low(BRIDGE, 3), hs[0], hs[1]]
    media = [SAMPLES / "bridge-small.jpg", SAMPLES / "bridge-rotate-90.jpg",
             VIDEOS / "chair-19-sd-bar.mp4"]
    for args in (["--json", "--max-distance", "64", *queries],
                 ["--json", "--dihedral", *media], ["--max-distance", "40", *queries]):
        pa, pb = run("lookup", "--db", a, *args), run("lookup", "--db", b, *args)
        assert (pa.returncode, pa.stdout) == (pb.returncode, pb.stdout), args
    sa, sb = serve(a), serve(b)
    for path in [f"/v1/lookup?hash={BRIDGE}&max_distance=64",
                 f"/v1/lookup?hash={flip_low(BRIDGE, 3)}",
                 "/v1/banks/strict/content?limit=100"]:
        ra = requests.get(sa.url + path, timeout=10).text
        rb = requests.get(sb.url + path, timeout=10).text
        assert ra == rb, path
    for f, q in [(SAMPLES / "bridge-rotate-90.jpg", "?dihedral=1"),
                 (VIDEOS / "chair-19-sd-bar.mp4", "")]:
        ra = requests.post(sa.url + "/v1/lookup/media" + q, data=f.read_bytes(),
                           headers={"Content-Type": "application/octet-stream"}, timeout=60)
        rb = requests.post(sb.url + "/v1/lookup/media" + q, data=f.read_bytes(),
                           headers={"Content-Type": "application/octet-stream"}, timeout=60)
        assert ra.json()["matches"] == rb.json()["matches"] and ra.json()["matches"], f


def test_finding_5_csv_round_trip_through_index(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    build_rich_store(tmp_path, a)
    c1 = run("export", "--db", a)
    assert c1.returncode == 0
    (tmp_path / "c1.csv").write_text(c1.stdout)
    # The bank column is honoured: no --bank needed, each row to its bank.
    p = run("index", "--db", b, "--hash-list", tmp_path / "c1.csv")
    assert p.returncode == 0, p.stderr
    c2 = run("export", "--db", b)
    assert c2.stdout == c1.stdout
    kinds = {r["content_id"]: r["kind"] for r in csv_rows(c2.stdout)}
    assert kinds["chair-19-sd-bar.mp4"] == "video" and kinds["plain.jpg"] == "image"
    assert {r["content_id"]: r["quality"] for r in csv_rows(c2.stdout)}["low"] == "30"


def csv_rows(text):
    import csv
    import io
    return list(csv.DictReader(io.StringIO(text)))


def test_finding_5_import_refuses_bad_lines(tmp_path):
    db = tmp_path / "c.db"
    h = random_hashes(1, 22)[0]
    f = tmp_path / "x.jsonl"
    f.write_text('{"format":"pdqmatch-export","version":1}\n'
                 '{"type":"bank","name":"b","threshold":300}\n'
                 'not json\n'
                 f'{{"type":"item","bank":"b","content_id":"ok","hashes":[{{"hash":"{h}"}}]}}\n'
                 f'{{"type":"item","bank":"b","content_id":"z","hashes":[{{"hash":"{"0" * 64}"}}]}}\n'
                 '{"type":"item","bank":"b","content_id":"../up","hashes":[]}\n')
    p = run("import", "--db", db, f)
    assert p.returncode == 1
    err = p.stderr.splitlines()
    assert len(err) == 4 and err[0] == f"pdqmatch: {f}:2: bank 'b': 'threshold' is 0 to 256"
    assert err[1].startswith(f"pdqmatch: {f}:3: not a JSON object")
    assert "bits set" in err[2] and "'..'" in err[3]
    assert p.stdout.startswith("imported 1 item (1 hash)")
    p = run("import", "--db", db, SAMPLES / "bridge.jpg")
    assert p.returncode == 2 and "is not a pdqmatch export's" in p.stderr


def test_finding_10_metadata_numbers_come_back_exactly(tmp_path, serve):
    db = tmp_path / "c.db"
    assert run("banks", "--db", db, "create", "m").returncode == 0
    s = serve(db)
    h = random_hashes(1, 23)[0]
    meta = {"t": 1700000000.5, "max": 1.7976931348623157e308, "tiny": 5e-324, "i": 12345678901}
    r = requests.post(s.url + "/v1/banks/m/hashes",
                      json={"items": [{"hash": h, "content_id": "x", "metadata": meta}]},
                      timeout=10)
    assert r.status_code == 200, r.text
    got = requests.get(s.url + "/v1/banks/m/content/x", timeout=10).json()["metadata"]
    assert got == meta
    got = requests.get(s.url + f"/v1/lookup?hash={h}", timeout=10).json()
    assert got["matches"][0]["metadata"] == meta
    page = requests.get(s.url + "/v1/banks/m/content", timeout=10).json()
    assert page["items"][0]["metadata"] == meta
    p = run("lookup", "--db", db, "--json", h)
    assert json.loads(p.stdout)["matches"][0]["metadata"] == meta
