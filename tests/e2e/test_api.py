"""pdqmatch serve: banks, content, batch lookups and the hostile-input
answers of the JSON routes.  Each test runs its own server and store."""
import json
import re
import socket
import subprocess
import time

import pytest
import requests

from helpers import BIN, run, drain

BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


def flip(hex_hash, bits):
    """hex_hash with its lowest `bits` bits inverted."""
    return f"{int(hex_hash, 16) ^ ((1 << bits) - 1):064x}"


def test_bank_lifecycle(server):
    url, proc, db = server
    r = requests.post(url + "/v1/banks", json={"name": "ncmec", "threshold": 20}, timeout=10)
    assert r.status_code == 201
    assert {k: r.json()[k] for k in ("name", "threshold", "kind", "contents", "hashes")} == \
        {"name": "ncmec", "threshold": 20, "kind": "block", "contents": 0, "hashes": 0}
    r = requests.post(url + "/v1/banks", json={"name": "ncmec"}, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "exists")
    r = requests.patch(url + "/v1/banks/ncmec", json={"kind": "allow", "threshold": 5}, timeout=10)
    assert (r.status_code, r.json()["kind"], r.json()["threshold"]) == (200, "allow", 5)
    assert requests.get(url + "/v1/banks/ncmec", timeout=10).json()["kind"] == "allow"
    names = [b["name"] for b in requests.get(url + "/v1/banks", timeout=10).json()["banks"]]
    assert names == ["ncmec", "photos"]
    r = requests.delete(url + "/v1/banks/ncmec", timeout=10)
    assert r.json() == {"bank": "ncmec", "deleted": True}
    assert requests.get(url + "/v1/banks/ncmec", timeout=10).status_code == 404
    assert requests.delete(url + "/v1/banks/ncmec", timeout=10).status_code == 404


@pytest.mark.parametrize("body,message", [
    ({"name": "bad name"}, "a bank name holds only letters, digits, '.', '_' and '-'"),
    ({"threshold": 3}, "'name' (a string) is required"),
    ({"name": "x", "threshold": 257}, "'threshold' is a number from 0 to 256"),
    ({"name": "x", "threshold": "3"}, "'threshold' is a number from 0 to 256"),
    ({"name": "x", "kind": "maybe"}, "'kind' is \"block\" or \"allow\""),
])
def test_bank_bad_requests(server, body, message):
    url, proc, db = server
    r = requests.post(url + "/v1/banks", json=body, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == message
    assert [b["name"] for b in requests.get(url + "/v1/banks", timeout=10).json()["banks"]] == \
        ["photos"]


def test_added_hash_found_at_once_and_deleted_never_again(server):
    url, proc, db = server
    assert requests.post(url + "/v1/banks", json={"name": "t"}, timeout=10).status_code == 201
    h = flip(BRIDGE, 200)
    items = [{"hash": h, "content_id": "dir/x.jpg", "quality": 90, "metadata": {"case": 7}},
             {"hash": flip(BRIDGE, 100), "content_id": "dir/x.jpg", "quality": 80}]
    r = requests.post(url + "/v1/banks/t/hashes", json={"items": items}, timeout=10)
    assert r.json() == {"bank": "t", "added": 2, "existing": []}
    m = requests.get(url + "/v1/lookup", params={"hash": h, "banks": "t"}, timeout=10).json()
    assert [(x["content_id"], x["distance"], x["quality"], x["metadata"]) for x in m["matches"]] \
        == [("dir/x.jpg", 0, 90, {"case": 7})]
    c = requests.get(url + "/v1/banks/t/content/dir/x.jpg", timeout=10).json()
    assert [x["hash"] for x in c["hashes"]] == [h, flip(BRIDGE, 100)]
    # The same batch again stores nothing twice.
    r = requests.post(url + "/v1/banks/t/hashes", json={"items": items}, timeout=10)
    assert r.json() == {"bank": "t", "added": 0, "existing": ["dir/x.jpg"]}
    r = requests.delete(url + "/v1/banks/t/content/dir%2Fx.jpg", timeout=10)
    assert r.json() == {"bank": "t", "content_id": "dir/x.jpg", "deleted": True}
    for _ in range(3):
        m = requests.get(url + "/v1/lookup", params={"hash": h, "banks": "t"}, timeout=10).json()
        assert m["matches"] == []
    assert requests.get(url + "/v1/banks/t/content/dir/x.jpg", timeout=10).status_code == 404
    assert run("verify", "--db", db).returncode == 0


def test_batch_of_100_with_one_bad_item_stores_none(server):
    url, proc, db = server
    requests.post(url + "/v1/banks", json={"name": "t"}, timeout=10)
    items = [{"hash": flip(BRIDGE, i + 1), "content_id": f"c{i}"} for i in range(100)]
    items[57]["hash"] = "zz" * 32
    r = requests.post(url + "/v1/banks/t/hashes", json={"items": items}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "items[57] has no valid 'hash' (64 hex digits)"
    assert requests.get(url + "/v1/banks/t", timeout=10).json()["hashes"] == 0
    items[57]["hash"] = BRIDGE
    r = requests.post(url + "/v1/banks/t/hashes", json={"items": items}, timeout=10)
    assert r.json()["added"] == 100
    assert requests.get(url + "/v1/banks/t", timeout=10).json()["hashes"] == 100


def test_content_paging(server):
    url, proc, db = server
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = requests.get(url + "/v1/banks/photos/content", params=params, timeout=10).json()
        assert len(page["items"]) <= 2
        seen += [x["content_id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 5
    assert "bridge.jpg" in seen


def test_batch_lookup(server):
    url, proc, db = server
    body = {"hashes": [BRIDGE, flip(BRIDGE, 128)], "max_distance": 31, "banks": ["photos"]}
    r = requests.post(url + "/v1/lookup", json=body, timeout=10).json()
    assert [x["query"] for x in r["results"]] == body["hashes"]
    assert [m["content_id"] for m in r["results"][0]["matches"]] == \
        ["bridge.jpg", "bridge-small.jpg"]
    assert r["results"][1]["matches"] == []


def test_get_lookup_refuses_dihedral_with_directions(server):
    """A hash cannot be rotated: dihedral=1 on a hash lookup says where the
    8 hashes come from instead of answering for the one hash."""
    url, proc, db = server
    r = requests.get(url + "/v1/lookup", params={"hash": BRIDGE, "dihedral": "1"}, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid")
    assert "/v1/lookup/media?dihedral=1" in r.json()["error"]["message"]


@pytest.mark.parametrize("method,path,body,status,code", [
    ("POST", "/v1/lookup", b"{", 400, "invalid_json"),
    ("POST", "/v1/lookup", b"[" * 10000 + b"]" * 10000, 400, "invalid_json"),
    ("POST", "/v1/lookup", b'{"hashes": "abc"}', 400, "invalid"),
    ("POST", "/v1/lookup", b'{"hashes": [7]}', 400, "invalid"),
    ("POST", "/v1/lookup", b'{"hashes": ["' + BRIDGE.encode() + b'"], "max_distance": "x"}',
     400, "invalid"),
    ("POST", "/v1/lookup", b'{"hashes": [' + b",".join([b'"' + BRIDGE.encode() + b'"'] * 1001)
     + b"]}", 400, "invalid"),
    ("POST", "/v1/banks/photos/hashes", b'{"items": [{"hash": "' + BRIDGE.encode()
     + b'", "content_id": "../../etc/passwd"}]}', 400, "invalid"),
    ("POST", "/v1/banks/photos/hashes", b'{"items": [{"hash": "' + BRIDGE.encode()
     + b'", "content_id": "x", "quality": 101}]}', 400, "invalid"),
    ("POST", "/v1/banks/nope/hashes", b'{"items": [{"hash": "' + BRIDGE.encode()
     + b'", "content_id": "x"}]}', 404, "not_found"),
    ("GET", "/v1/banks/photos/content/..%2F..%2Fetc%2Fpasswd", b"", 400, "invalid"),
    ("GET", "/v1/banks/photos/content/%FF%FE", b"", 400, "invalid"),
    ("DELETE", "/v1/banks/photos/content/%FF", b"", 400, "invalid"),
    ("GET", "/v1/banks/photos/content?limit=0", b"", 400, "invalid"),
    ("GET", "/v1/stats", b"abc", 413, "too_large"),
])
def test_hostile_json_changes_nothing(server, method, path, body, status, code):
    url, proc, db = server
    before = requests.get(url + "/v1/stats", timeout=10).json()
    r = requests.request(method, url + path, data=body, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert requests.get(url + "/v1/stats", timeout=10).json() == before
    assert proc.poll() is None


def test_huge_content_length_is_refused_unread(server):
    url, proc, db = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\n")
        reply = s.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413 ")
    assert '"code":"too_large"' in reply
    assert requests.get(url + "/healthz", timeout=10).ok


def test_stats(server):
    url, proc, db = server
    st = requests.get(url + "/v1/stats", timeout=10).json()
    assert (st["banks"], st["contents"], st["hashes"], st["schema"]) == (1, 5, 5, 5)


def test_allow_bank_suppresses_block_matches(server):
    url, proc, db = server
    near = flip(BRIDGE, 3)
    q = {"hash": near, "max_distance": 31}
    m = requests.get(url + "/v1/lookup", params=q, timeout=10).json()["matches"]
    assert [(x["content_id"], x["bank_kind"], x["suppressed"]) for x in m][:1] == \
        [("bridge.jpg", "block", False)]
    requests.post(url + "/v1/banks", json={"name": "safe", "kind": "allow"}, timeout=10)
    r = requests.post(url + "/v1/banks/safe/hashes",
                      json={"items": [{"hash": near, "content_id": "known-good"}]}, timeout=10)
    assert r.json()["added"] == 1
    m = requests.get(url + "/v1/lookup", params=q, timeout=10).json()["matches"]
    kinds = {x["content_id"]: (x["bank_kind"], x["suppressed"]) for x in m}
    assert kinds["known-good"] == ("allow", False)
    assert kinds["bridge.jpg"] == ("block", True)
    # Out of reach of the allow entry (3 bits away), nothing is suppressed.
    m = requests.get(url + "/v1/lookup", params={"hash": BRIDGE, "max_distance": 2},
                     timeout=10).json()["matches"]
    assert [(x["content_id"], x["suppressed"]) for x in m] == [("bridge.jpg", False)]


def test_slow_clients_do_not_block_others(server):
    """Slowloris: 40 connections that send half a request and stall.  Others
    are still answered at once."""
    url, proc, db = server
    port = int(url.rsplit(":", 1)[1])
    slow = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        slow.append(s)
    try:
        for _ in range(20):
            start = time.monotonic()
            assert requests.get(url + "/healthz", timeout=5).ok
            assert time.monotonic() - start < 1
    finally:
        for s in slow:
            s.close()
    assert proc.poll() is None


def test_idle_connections_are_closed_after_the_timeout(tmp_path):
    db = tmp_path / "s.db"
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0",
                             "--timeout", "1"], stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)$", proc.stderr.readline().strip()).group(1))
        drain(proc)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")   # never finished
            start = time.monotonic()
            assert s.recv(4096) == b""                             # closed by the server
            assert time.monotonic() - start < 5
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_hash_lookup_answers_as_the_cli_does(server):
    """GET /v1/lookup, POST /v1/lookup and `pdqmatch lookup --json` write
    one answer shape (core/match_json.c): the same objects, stored
    metadata as it was given, names escaped alike."""
    url, proc, db = server
    near = flip(BRIDGE, 2)
    for name, kind in (("t", "block"), ("safe", "allow")):
        assert requests.post(url + "/v1/banks", json={"name": name, "kind": kind},
                             timeout=10).status_code == 201
    # Raw text, so that the metadata's spelling is what the server stores.
    body = ('{"items":[{"hash":"%s","content_id":"say \\"hi\\"/caf\u00e9\\\\x",'
            '"metadata":{"n": 9007199254740993, "f": 0.10000000000000000001, "s": "a\\u2028b"}}]}'
            % near)
    r = requests.post(url + "/v1/banks/t/hashes", data=body.encode(),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.post(url + "/v1/banks/safe/hashes",
                      json={"items": [{"hash": BRIDGE, "content_id": "known-good"}]}, timeout=10)
    assert r.json()["added"] == 1
    queries = [near, flip(BRIDGE, 200)]
    one = requests.get(url + "/v1/lookup", params={"hash": near, "max_distance": 31}, timeout=10)
    batch = requests.post(url + "/v1/lookup", json={"hashes": queries, "max_distance": 31},
                          timeout=10)
    p = run("lookup", "--db", db, "--json", "--max-distance", "31", *queries)
    assert p.returncode == 1 and p.stderr == "", p.stderr   # 1: every block match suppressed
    cli = [json.loads(line) for line in p.stdout.split("\n") if line]
    assert [one.json()] == cli[:1]
    assert batch.json() == {"results": cli}
    got = {m["content_id"]: m for m in one.json()["matches"]}
    assert got['say "hi"/caf\u00e9\\x']["metadata"] == \
        {"n": 9007199254740993, "f": 0.1, "s": "a\u2028b"}
    assert got['say "hi"/caf\u00e9\\x']["suppressed"] is True
    assert got["known-good"]["bank_kind"] == "allow"
    # The stored text, byte for byte, in both (an integer past 2^53 whole).
    spelled = [re.search(r'"metadata":(\{"n".*?\})', text).group(1) for text in (one.text, p.stdout)]
    assert spelled[0] == spelled[1] and "9007199254740993" in spelled[0]


def test_disabled_content_and_banks_of_ratio_0_match_nothing(server):
    """An item's disabled_until and a bank's enabled_ratio, through
    pdqmatch's own API: the same rule as HMA's, kept by the library."""
    url, _, _ = server
    s = requests.Session()
    item = url + "/v1/banks/photos/content/bridge.jpg"
    found = lambda: len(s.get(url + "/v1/lookup", params={"hash": BRIDGE, "max_distance": 0})
                        .json()["matches"])
    assert found() == 1
    r = s.patch(item, json={"disabled_until": -1, "note": "under review"})
    assert r.status_code == 200
    assert (r.json()["disabled_until"], r.json()["note"]) == (-1, "under review")
    assert found() == 0
    assert s.get(item).json()["disabled_until"] == -1
    r = s.patch(item, json={"disabled_until": int(time.time()) - 5, "note": None})
    assert r.status_code == 200 and "note" not in r.json()
    assert found() == 1
    for body in ({"disabled_until": -2}, {"disabled_until": "x"}, {"note": 5}, {},
                 {"note": "x" * 256}):
        r = s.patch(item, json=body)
        assert r.status_code == 400, (body, r.text)
    r = s.patch(url + "/v1/banks/photos/content/missing", json={"note": "x"})
    assert r.status_code == 404
    r = s.patch(url + "/v1/banks/photos", json={"enabled_ratio": 0})
    assert (r.status_code, r.json()["enabled_ratio"]) == (200, 0.0)
    assert found() == 0
    assert s.patch(url + "/v1/banks/photos", json={"enabled_ratio": 1.5}).status_code == 400
    s.patch(url + "/v1/banks/photos", json={"enabled_ratio": 1})
    assert found() == 1
