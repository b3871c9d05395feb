"""Hash lists from the exchanges (issue 17): NCMEC, StopNCII, ThreatExchange
and TCAP, fetched from a local stand-in of each API (exchange_standin.py),
kept in sync, deletions applied, a fetch killed at any moment resumed."""
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from exchange_standin import CREDENTIALS, start as start_standin
from helpers import BIN, DATA, ROOT, drain, run

PAYLOADS = DATA / "exchanges"

# api (the stand-in's prefix) -> how pdqmatch is told about it
APIS = {
    "ncmec": {"type": "ncmec", "bank": "NCMEC", "extra": []},
    "stopncii": {"type": "stopncii", "bank": "NCII", "extra": ["--page-size", "3"]},
    "te": {"type": "threatexchange", "bank": "TE",
           "extra": ["--page-size", "3", "--privacy-group", "123"]},
    "tcap": {"type": "tcap", "bank": "TCAP", "extra": []},
}
VIDEO_TYPES = ("mp4", "mov", "m4v", "webm", "avi", "mkv", "flv", "wmv", "mpg", "mpeg", "3gp")


@pytest.fixture
def standin():
    httpd = start_standin()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def control(base, what, **body):
    req = urllib.request.Request(base + "/_control/" + what, data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def requests_of(base, api):
    with urllib.request.urlopen(base + "/_control/requests?api=" + api, timeout=10) as r:
        return json.load(r)


def load(base, api, phase, file=None):
    control(base, "load", api=api, file=str(file or PAYLOADS / (api + ".json")), phase=phase)


def creds_file(tmp_path, api, mode=0o600):
    p = tmp_path / ("creds-" + api + ".json")
    p.write_text(json.dumps(CREDENTIALS[api]))
    os.chmod(p, mode)
    return p


def add(tmp_path, base, api, db=None, name=None, extra=()):
    db = db or tmp_path / "x.db"
    name = name or "x-" + api
    a = APIS[api]
    r = run("exchange", "add", name, "--db", db, "--type", a["type"], "--bank", a["bank"],
            "--credentials", creds_file(tmp_path, api), "--base-url", base + "/" + api,
            *a["extra"], *extra)
    assert r.returncode == 0, r.stderr
    return db, name


def fetch(db, *names, env=None, extra=()):
    return run("exchange", "fetch", "--db", db, "--max-wait", "2", *extra, *names, env=env)


def status(db, name):
    r = run("exchange", "status", name, "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def items(db, bank):
    """content_id -> (signal, hash or md5, metadata) of the bank, from an export."""
    r = run("export", "--db", db, "--bank", bank, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines()[1:]:
        j = json.loads(line)
        if j["type"] != "item":
            continue
        if j["hashes"]:
            sig = ("pdq", j["hashes"][0]["hash"])
        else:
            sig = ("md5", j["md5"])
        out[j["content_id"]] = sig + (j.get("metadata"),)
    return out


def export_lines(db, bank):
    """The bank's items as exported, without the times a fetch gives them."""
    r = run("export", "--db", db, "--bank", bank, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines()[1:]:
        j = json.loads(line)
        if j["type"] != "item":
            continue
        j.pop("added", None)
        meta = j.get("metadata") or {}
        for k in ("updated_at", "updated_on", "lastModtimestamp"):
            meta.pop(k, None)
        out.append(json.dumps(j, sort_keys=True))
    return sorted(out)


# -- what each API's records should become ----------------------------------

def is_hex(s, n):
    return isinstance(s, str) and len(s) == n and all(c in "0123456789abcdefABCDEF" for c in s)


def record_key(api, r):
    if api == "ncmec":
        return "%s-%s" % (r["member"], r["id"])
    if api == "stopncii":
        return "%s:%s" % (r["signalType"], r["hashValue"])
    return str(r["id"])


def record_item(api, r):
    """(signal, hash) the record stores, or None (deleted, skipped, bad)."""
    if api == "ncmec":
        if r.get("deleted"):
            return None
        fp = r.get("fingerprints", {})
        if r.get("kind", "image") == "image" and is_hex(fp.get("pdq"), 64):
            return ("pdq", fp["pdq"])
        if r.get("kind") == "video" and is_hex(fp.get("md5"), 32):
            return ("md5", fp["md5"])
        return None
    if api == "stopncii":
        if r["hashStatus"] in ("Withdrawn", "Deleted"):
            return None
        if r["signalType"] == "ImagePDQ" and is_hex(r["hashValue"], 64):
            return ("pdq", r["hashValue"])
        if r["signalType"] == "VideoMD5" and is_hex(r["hashValue"], 32):
            return ("md5", r["hashValue"])
        return None
    if api == "te":
        if r.get("should_delete") or "descriptors" not in r:
            return None
        tags = [t for d in r["descriptors"]["data"] for t in d.get("tags", [])]
        if r["type"] == "HASH_PDQ" and is_hex(r["indicator"], 64):
            return ("pdq", r["indicator"])
        if (r["type"] == "HASH_VIDEO_MD5" or (r["type"] == "HASH_MD5" and "media_type_video" in tags)) \
                and is_hex(r["indicator"], 32):
            return ("md5", r["indicator"])
        return None
    if r.get("deleted"):
        return None
    if r["algorithm"] == "PDQ" and is_hex(r["hash_digest"], 64):
        return ("pdq", r["hash_digest"])
    if r["algorithm"] == "MD5" and r.get("file_type") in VIDEO_TYPES and is_hex(r["hash_digest"], 32):
        return ("md5", r["hash_digest"])
    return None


def expected(api, phases):
    """content_id -> (signal, hash) of the live records after these phases."""
    state = {}
    for ph in phases:
        for k in ph.get("forget", []):
            state.pop(k, None)
        for r in ph.get("records", []):
            state[record_key(api, r)] = r
    out = {}
    for k, r in state.items():
        it = record_item(api, r)
        if it:
            out[k] = it
    return out


def payload(api):
    return json.loads((PAYLOADS / (api + ".json")).read_text())


def assert_items(db, api, want):
    got = items(db, APIS[api]["bank"])
    assert {k: v[:2] for k, v in got.items()} == want
    for k, (_, _, meta) in got.items():
        assert meta["record_id"] == k and meta["source"] == APIS[api]["type"], meta
        assert meta["exchange"] == "x-" + api


def verify(db):
    r = run("verify", "--db", db)
    assert r.returncode == 0, r.stdout + r.stderr


# -- each exchange: a full fetch, nothing new, then changes -----------------

@pytest.mark.parametrize("api", list(APIS))
def test_full_fetch_nothing_new_then_changes(tmp_path, standin, api):
    data = payload(api)
    load(standin, api, 0)
    db, name = add(tmp_path, standin, api)
    r = fetch(db, env=dict(os.environ, TZ="Asia/Kolkata"))
    assert r.returncode == 0, r.stderr
    assert_items(db, api, expected(api, data["phases"][:1]))
    s = status(db, name)
    last = s["last_fetch"]
    assert last["ok"] and last["pages"] >= 2 and last["bad"] == 1 and last["skipped"] >= 2, s
    assert last["added"] == len(expected(api, data["phases"][:1]))
    # Which record was bad, and where, is said.
    assert re.search(r"page \d+, record \d+ .*not 64 hex digits; skipped", r.stderr), r.stderr
    before = export_lines(db, APIS[api]["bank"])
    raw_before = run("export", "--db", db, "--format", "jsonl").stdout

    # Again, nothing new: nothing changes (not even the times items were added).
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    assert run("export", "--db", db, "--format", "jsonl").stdout == raw_before
    last = status(db, name)["last_fetch"]
    assert last["added"] == last["updated"] == last["deleted"] == 0, last

    # The next pages: an update, deletions or withdrawals, a new record.
    load(standin, api, 1)
    time.sleep(1.2)
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    want = expected(api, data["phases"][:2])
    assert_items(db, api, want)
    last = status(db, name)["last_fetch"]
    assert last["added"] == 1 and last["updated"] == 1 and last["deleted"] == 2, last
    assert export_lines(db, APIS[api]["bank"]) != before
    verify(db)


@pytest.mark.parametrize("api", list(APIS))
def test_429_and_503_mid_fetch(tmp_path, standin, api):
    load(standin, api, 0)
    db, name = add(tmp_path, standin, api)
    control(standin, "faults", api=api, faults={"2": {"status": 429, "retry_after": 1},
                                                "3": {"status": 503}})
    t0 = time.time()
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    assert "HTTP 429; trying again in 1.0 s" in r.stderr, r.stderr
    assert "HTTP 503; trying again" in r.stderr, r.stderr
    assert time.time() - t0 >= 1.0      # Retry-After was honoured
    assert_items(db, api, expected(api, payload(api)["phases"][:1]))
    assert status(db, name)["last_fetch"]["ok"]


# -- kill -9 at random moments, then a rerun --------------------------------

def big_phases(api, n, seed):
    """Two phases of about n records each in the API's shape, with every
    kind of record the small payloads have."""
    rnd = random.Random(seed)
    hexh = lambda bits: "%0*x" % (bits // 4, rnd.getrandbits(bits))
    def rec(i, kind, deleted=False, age=3600):
        h = hexh(256) if kind == "pdq" else hexh(128) if kind == "md5" else "not-a-hash"
        if api == "ncmec":
            fp = {"pdq": h} if kind in ("pdq", "bad") else {"md5": h} if kind == "md5" else {"sha1": "ab" * 20}
            return {"member": 40 + i % 3, "id": "e%d" % i, "kind": "video" if kind == "md5" else "image",
                    "fingerprints": fp, "deleted": deleted, "age": age}
        if api == "stopncii":
            t = {"pdq": "ImagePDQ", "bad": "ImagePDQ", "md5": "VideoMD5", "other": "VideoTMK"}[kind]
            return {"signalType": t, "hashValue": h if kind != "other" else "tmk%d" % i,
                    "hashStatus": "Withdrawn" if deleted else "Active", "caseNumbers": {"c%d" % i: "Active"},
                    "CSPFeedbacks": [], "age": age}
        if api == "te":
            t = {"pdq": "HASH_PDQ", "bad": "HASH_PDQ", "md5": "HASH_VIDEO_MD5", "other": "URI"}[kind]
            r = {"id": str(2000 + i), "indicator": h, "type": t, "should_delete": deleted, "age": age,
                 "descriptors": {"data": [{"id": str(i), "owner": {"id": "9"}, "tags": ["t%d" % (i % 4)]}]}}
            return r
        alg = {"pdq": "PDQ", "bad": "PDQ", "md5": "MD5", "other": "SHA256"}[kind]
        return {"id": i, "hash_digest": h, "algorithm": alg, "ideology": "x",
                "file_type": "mp4" if kind == "md5" else "jpg", "deleted": deleted, "age": age}
    kinds = ["pdq"] * 6 + ["md5", "other", "bad"]
    first = [rec(i, rnd.choice(kinds), age=7200 - i) for i in range(n)]
    second = []
    for i in range(0, n, 4):          # withdrawals
        r = dict(first[i])
        r["age"] = 1
        if api == "ncmec":
            r["deleted"] = True
        elif api == "stopncii":
            r["hashStatus"] = "Withdrawn"
        elif api == "te":
            r["should_delete"] = True
        else:
            r["deleted"] = True
        second.append(r)
    for i in range(1, n, 6):          # updates (a new hash, same id)
        if api == "stopncii":
            continue                  # (its id is its hash)
        r = rec(i, "pdq", age=1)
        second.append(r)
    second += [rec(n + i, "pdq", age=1) for i in range(n // 5)]
    return [{"records": first}, {"records": second}]


@pytest.mark.parametrize("api", list(APIS))
def test_kill_9_then_rerun_ends_as_an_uninterrupted_fetch(tmp_path, standin, api):
    phases = big_phases(api, 60, seed=hash(api) & 0xffff)
    f = tmp_path / "big.json"
    f.write_text(json.dumps({"phases": phases}))
    bank = APIS[api]["bank"]

    def fresh(tag):
        db = tmp_path / ("%s.db" % tag)
        control(standin, "reset", api=api)
        control(standin, "delay", api=api, seconds=0)
        load(standin, api, 0, f)
        add(tmp_path, standin, api, db=db)
        return db

    # The reference: both phases fetched whole.
    ref = fresh("ref")
    assert fetch(ref).returncode == 0
    load(standin, api, 1, f)
    time.sleep(1.2)
    assert fetch(ref).returncode == 0
    want = export_lines(ref, bank)
    assert {k: v[:2] for k, v in items(ref, bank).items()} == expected(api, phases)

    rnd = random.Random(17)
    killed_mid = 0
    for rnd_no in range(10):
        db = fresh("r%d" % rnd_no)
        second = rnd_no % 2 == 1      # half the rounds are killed in the second phase
        if second:
            assert fetch(db).returncode == 0
            load(standin, api, 1, f)
            time.sleep(1.2)
        control(standin, "delay", api=api, seconds=0.02)
        p = subprocess.Popen([BIN, "exchange", "fetch", "--db", str(db), "-q"],
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.0, 0.45))
        p.send_signal(signal.SIGKILL)
        p.wait()
        killed_mid += p.returncode == -signal.SIGKILL
        control(standin, "delay", api=api, seconds=0)
        r = fetch(db)
        assert r.returncode == 0, r.stderr
        if not second:
            load(standin, api, 1, f)
            time.sleep(1.2)
            r = fetch(db)
            assert r.returncode == 0, r.stderr
        assert export_lines(db, bank) == want, "round %d" % rnd_no
        verify(db)
    assert killed_mid >= 5


# -- what each exchange must do its own way ---------------------------------

def test_ncmec_only_a_drained_window_moves_the_checkpoint_in_utc(tmp_path, standin):
    load(standin, "ncmec", 0)
    db, name = add(tmp_path, standin, "ncmec")
    # The second page fails for good: the window is not drained.
    control(standin, "faults", api="ncmec", faults={"2": {"status": 500}, "3": {"status": 500}})
    t0 = time.time()
    r = fetch(db, env=dict(os.environ, TZ="America/Los_Angeles"), extra=["--retries", "1"])
    assert r.returncode == 1, r.stderr
    s = status(db, name)
    assert not s["last_fetch"]["ok"] and "HTTP 500" in s["last_fetch"]["error"], s
    cp = s["checkpoint"]
    assert cp["from"] == 0 and cp["to"] >= int(t0) - 5 and cp["next"].startswith("/v2/entries?"), cp
    got = items(db, "NCMEC")
    assert 0 < len(got) < len(expected("ncmec", payload("ncmec")["phases"][:1]))
    # The times asked for are UTC, whatever the machine's zone.
    q = requests_of(standin, "ncmec")[0]["query"]
    assert q["from"] == "1970-01-01T00:00:00Z"
    to = time.mktime(time.strptime(q["to"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(to - t0) < 10, (q, t0)
    # The rest of the window, then the checkpoint moves to its end.
    control(standin, "faults", api="ncmec", faults={})
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    assert "resuming a window on its stored page" in r.stderr
    cp = status(db, name)["checkpoint"]
    assert set(cp) == {"from"} and cp["from"] >= int(t0) - 5, cp
    assert_items(db, "ncmec", expected("ncmec", payload("ncmec")["phases"][:1]))


def test_stopncii_withdrawn_hashes_are_deleted_and_a_stale_token_restarts_the_set(tmp_path, standin):
    data = payload("stopncii")
    load(standin, "stopncii", 0)
    db, name = add(tmp_path, standin, "stopncii")
    assert fetch(db).returncode == 0
    h2 = "ImagePDQ:" + data["phases"][0]["records"][1]["hashValue"]
    assert h2 in items(db, "NCII")
    load(standin, "stopncii", 1)
    time.sleep(1.2)
    assert fetch(db).returncode == 0
    got = items(db, "NCII")
    assert h2 not in got                       # Withdrawn
    assert not any(k.startswith("VideoMD5:") for k in got)   # Deleted
    # A fetch cut inside a set leaves a page token; the service forgets it.
    control(standin, "reset", api="stopncii")
    load(standin, "stopncii", 0)
    db2, name2 = add(tmp_path, standin, "stopncii", db=tmp_path / "y.db")
    control(standin, "faults", api="stopncii", faults={"2": {"status": 503}, "3": {"status": 503}})
    assert fetch(db2, extra=["--retries", "1"]).returncode == 1
    assert status(db2, name2)["checkpoint"].get("token")
    control(standin, "faults", api="stopncii", faults={})
    control(standin, "stale_tokens", api="stopncii")
    r = fetch(db2)
    assert r.returncode == 0, r.stderr
    assert "refused the stored page token" in r.stderr, r.stderr
    assert_items(db2, "stopncii", expected("stopncii", data["phases"][:1]))


def test_tcap_unknown_fields_are_ignored(tmp_path, standin):
    data = payload("tcap")
    assert "new_field" in data["phases"][0]["records"][4]
    load(standin, "tcap", 0)
    db, name = add(tmp_path, standin, "tcap")
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    got = items(db, "TCAP")
    assert "5" in got and got["5"][2]["ideology"] == "far-right"
    assert "new_field" not in got["5"][2]
    # The page's own unknown fields ("extra") do not matter either.
    assert_items(db, "tcap", expected("tcap", data["phases"][:1]))


def test_threatexchange_no_descriptors_is_a_deletion_and_a_stale_checkpoint_refetches(tmp_path, standin):
    data = payload("te")
    load(standin, "te", 0)
    db, name = add(tmp_path, standin, "te")
    assert fetch(db).returncode == 0
    assert "1006" in items(db, "TE")
    load(standin, "te", 1)
    time.sleep(1.2)
    assert fetch(db).returncode == 0
    got = items(db, "TE")
    assert "1006" not in got and "1002" not in got and "1003" in got
    # The service forgets 1003 without a tombstone (deletions are kept 90
    # days); a checkpoint 100 days old cannot be trusted to bring it.
    load(standin, "te", 2)
    old = int(time.time()) - 100 * 86400
    r = run("exchange", "reset", name, "--db", db, "--checkpoint", json.dumps({"update_time": old}))
    assert r.returncode == 0, r.stderr
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    assert "fetching everything again" in r.stderr, r.stderr
    assert "1003" not in items(db, "TE")
    assert_items(db, "te", expected("te", data["phases"]))
    assert status(db, name)["checkpoint"]["update_time"] > old


# -- bad payloads ------------------------------------------------------------

@pytest.mark.parametrize("api,mode", [("ncmec", "garbage"), ("ncmec", "truncate"), ("ncmec", "doctype"),
                                      ("ncmec", "loop"), ("stopncii", "truncate"), ("stopncii", "loop"),
                                      ("te", "garbage"), ("te", "loop"), ("tcap", "truncate"),
                                      ("tcap", "loop")])
def test_bad_pages_are_counted_and_nothing_is_stored_half(tmp_path, standin, api, mode):
    load(standin, api, 0)
    db, name = add(tmp_path, standin, api)
    control(standin, "faults", api=api, faults={"2": {"corrupt": mode}})
    r = fetch(db)
    s = status(db, name)
    if mode == "loop":
        # A next page that is a page already read: refused, not followed forever.
        assert r.returncode == 1 and "a loop" in r.stderr, r.stderr
    else:
        assert r.returncode == 1, r.stderr
        assert s["last_fetch"]["bad"] >= 1, s
    assert not s["last_fetch"]["ok"]
    got = items(db, APIS[api]["bank"])
    want = expected(api, payload(api)["phases"][:1])
    # Only whole pages were stored, and each item is right.
    for k, v in got.items():
        assert want[k] == v[:2]
    control(standin, "faults", api=api, faults={})
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    assert_items(db, api, want)
    verify(db)


def test_a_page_over_the_size_cap_is_refused(tmp_path, standin):
    load(standin, "tcap", 0)
    control(standin, "page_size", api="tcap", size=7)     # one page of about 2.5 KB
    db, name = add(tmp_path, standin, "tcap")
    r = fetch(db, extra=["--max-page-bytes", "1024"])
    assert r.returncode == 1 and "over 1024 bytes" in r.stderr, r.stderr
    assert items(db, "TCAP") == {}


# -- credentials ---------------------------------------------------------------

def test_credentials_need_mode_0600_and_are_never_shown(tmp_path, standin):
    base = standin
    p = creds_file(tmp_path, "ncmec", mode=0o644)
    r = run("exchange", "add", "n", "--db", tmp_path / "x.db", "--type", "ncmec", "--bank", "B",
            "--credentials", p, "--base-url", base + "/ncmec")
    assert r.returncode == 1 and "mode 0644" in r.stderr and "chmod 600" in r.stderr, r.stderr
    p.write_text('{"username": "ncmec-user"}')
    os.chmod(p, 0o600)
    r = run("exchange", "add", "n", "--db", tmp_path / "x.db", "--type", "ncmec", "--bank", "B",
            "--credentials", p, "--base-url", base + "/ncmec")
    assert r.returncode == 1 and '"password"' in r.stderr, r.stderr
    # Everything a fetch shows, and everything stored, without a secret.
    shown = ""
    for api in APIS:
        load(base, api, 0)
        db, name = add(tmp_path, base, api)
        r = fetch(db)
        shown += r.stdout + r.stderr
    creds_file(tmp_path, "ncmec").write_text(json.dumps({"username": "ncmec-user",
                                                         "password": "wrong-secret-pw"}))
    assert run("exchange", "reset", "x-ncmec", "--db", tmp_path / "x.db").returncode == 0
    r = fetch(tmp_path / "x.db", "x-ncmec")
    assert r.returncode == 1 and "NCMEC refused the login" in r.stderr, r.stderr
    shown += r.stdout + r.stderr
    shown += run("exchange", "status", "--db", tmp_path / "x.db", "--json").stdout
    shown += run("exchange", "list", "--db", tmp_path / "x.db").stdout
    shown += run("export", "--db", tmp_path / "x.db", "--format", "jsonl").stdout
    shown += (tmp_path / "x.db").read_bytes().decode("latin-1")
    for c in CREDENTIALS.values():
        for k, v in c.items():
            if k != "username":
                assert v not in shown, k
    assert "wrong-secret-pw" not in shown


def test_one_fetcher_at_a_time(tmp_path, standin):
    load(standin, "tcap", 0)
    db, name = add(tmp_path, standin, "tcap")
    control(standin, "delay", api="tcap", seconds=0.5)
    p = subprocess.Popen([BIN, "exchange", "fetch", "--db", str(db)], stderr=subprocess.PIPE,
                         text=True)
    time.sleep(0.4)
    r = fetch(db)
    assert r.returncode == 1 and "is being fetched by" in r.stderr, r.stderr
    assert p.wait(timeout=60) == 0
    assert status(db, name)["fetching"] is None


# -- the service: lookups, provenance, a video's MD5, the background fetcher --

def serve(db, *extra):
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0", *extra],
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    drain(proc)
    m = re.search(r"listen=127\.0\.0\.1:(\d+)$", line.strip())
    assert m, line
    return proc, "http://127.0.0.1:%s" % m.group(1)


def http(method, url, body=None, ctype="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_lookups_return_provenance_and_a_video_md5_matches_the_file(tmp_path, standin):
    video = DATA / "vpdq" / "videos" / "chair-19-sd-bar.mp4"
    md5 = hashlib.md5(video.read_bytes()).hexdigest()
    pdq = "f" * 8 + "0" * 56
    pdq = "%064x" % random.Random(3).getrandbits(256)
    control(standin, "load", api="tcap", records=[
        {"id": 11, "hash_digest": pdq, "algorithm": "PDQ", "ideology": "far-right",
         "file_type": "jpg", "deleted": False, "age": 10},
        {"id": 12, "hash_digest": md5, "algorithm": "MD5", "ideology": "islamist",
         "file_type": "mp4", "deleted": False, "age": 5}])
    db, name = add(tmp_path, standin, "tcap")
    assert fetch(db).returncode == 0
    proc, url = serve(db)
    try:
        st, r = http("GET", url + "/v1/lookup?hash=" + pdq)
        assert st == 200, r
        m = r["matches"][0]
        assert m["bank"] == "TCAP" and m["content_id"] == "11" and m["distance"] == 0
        assert m["metadata"]["source"] == "tcap" and m["metadata"]["record_id"] == "11"
        assert m["metadata"]["ideology"] == "far-right" and m["metadata"]["exchange"] == name
        st, r = http("POST", url + "/v1/lookup/media", video.read_bytes(), "video/mp4")
        assert st == 200, r
        fm = [x for x in r["file_matches"] if x["bank"] == "TCAP"]
        assert fm and fm[0]["content_id"] == "12" and fm[0]["md5"] is True, r["file_matches"]
        assert fm[0]["metadata"]["signal_type"] == "video_md5"
    finally:
        stop(proc)


def test_serve_fetches_in_the_background_and_reports(tmp_path, standin):
    load(standin, "te", 0)
    db, name = add(tmp_path, standin, "te")
    proc, url = serve(db, "--fetch-interval", "1")
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            st, r = http("GET", url + "/v1/exchanges")
            if r["exchanges"][0]["last_fetch"]:
                break
            time.sleep(0.2)
        x = r["exchanges"][0]
        assert x["name"] == name and x["type"] == "threatexchange" and x["bank"] == "TE"
        assert x["last_fetch"]["ok"] and x["last_fetch"]["added"] == 4 and r["fetch_interval"] == 1
        assert x["checkpoint"]["update_time"] > 0
        assert "te-secret-token" not in json.dumps(r)
        load(standin, "te", 1)
        st, r = http("POST", url + "/v1/exchanges/" + name + "/fetch")
        assert st == 202, r
        deadline = time.time() + 30
        while time.time() < deadline and "1008" not in items(db, "TE"):
            time.sleep(0.2)
        assert_items(db, "te", expected("te", payload("te")["phases"][:2]))
        st, r = http("GET", url + "/v1/exchanges/" + name)
        assert st == 200 and r["total"]["deleted"] == 2, r
        st, r = http("GET", url + "/v1/exchanges/nope")
        assert st == 404
        with urllib.request.urlopen(url + "/metrics", timeout=10) as m:
            text = m.read().decode()
        assert 'pdqmatch_exchange_records_total{exchange="%s",outcome="added"} 5' % name in text, text
        assert 'pdqmatch_exchange_last_fetch_ok{exchange="%s"} 1' % name in text
        assert re.search(r'pdqmatch_exchange_last_success_timestamp_seconds\{exchange="%s"\} \d{10}' % name, text)
    finally:
        stop(proc)
    # Without --fetch-interval, asking for a fetch says how to get one.
    proc, url = serve(db)
    try:
        st, r = http("POST", url + "/v1/exchanges/" + name + "/fetch")
        assert st == 409 and "--fetch-interval" in r["error"]["message"], r
    finally:
        stop(proc)


def test_hma_exchange_routes_answer_from_the_exchanges(tmp_path, standin):
    load(standin, "ncmec", 0)
    db, name = add(tmp_path, standin, "ncmec")
    assert fetch(db).returncode == 0
    proc, url = serve(db, "--hma")
    try:
        st, r = http("GET", url + "/c/exchanges")
        assert (st, r) == (200, [name])
        st, r = http("GET", url + "/c/exchange/" + name)
        assert st == 200 and r["name"] == name and r["api"] == "ncmec" and r["enabled"] is True
        assert r["environment"] == standin + "/ncmec"
        st, r = http("GET", url + "/c/exchange/" + name + "/status")
        assert st == 200, r
        assert r["last_fetch_succeeded"] is True and r["up_to_date"] is True
        assert r["running_fetch_start_ts"] is None and r["fetched_items"] == 5
        assert r["checkpoint_ts"] >= int(time.time()) - 60 and r["last_fetch_complete_ts"] > 0
        st, r = http("GET", url + "/c/exchange/nope/status")
        assert st == 404 and r == {"message": "Exchange 'nope' not found"}
    finally:
        stop(proc)


def test_thousands_of_records_in_one_write(tmp_path, standin):
    """A write of more records than the batch first has room for (its array
    grows, and moves, while the records are taken): every item whole."""
    control(standin, "load", api="tcap", synthetic=5000)
    control(standin, "page_size", api="tcap", size=1000)
    db, name = add(tmp_path, standin, "tcap")
    r = fetch(db)
    assert r.returncode == 0, r.stderr
    got = items(db, "TCAP")
    assert len(got) == 5000
    r = run("export", "--db", db, "--bank", "TCAP", "--format", "csv")
    assert all(line.split(",")[1] == "100" for line in r.stdout.splitlines()[1:])
    verify(db)
