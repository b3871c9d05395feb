"""pdqmatch serve --hma: HMA's HTTP API (Hasher-Matcher-Actioner / Open Media
Match 1.1.7), driven as an HMA client drives it, every status and the exact
JSON shapes checked (keys, types, distance as a string).

The requests are those HMA's clients send (the Ruby gem
fetlife/hasher_matcher_actioner_api, ROOST's Coop): banks of
UPPER_WITH_UNDERSCORE names, photos added as a form field named 'photo',
lookups by signal and by file, bank filters naming banks that do not exist.
URL fetches go to a stand-in HTTP server on 127.0.0.1 started here.
"""
import hashlib
import http.server
import json
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from helpers import BIN, SAMPLES, VPDQ, drain, log_text, run

BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
BRIDGE_SMALL = "d0f8f1ccc0f4a84d0a370a3a228f67f0b36e2ed5b6623e1d33e6339c4e9c9b22"   # 14 bits
STREET = "cfb2009ddd21c6dab0046a7745b5984757a8a4535b3377aea2591d32b33ff940"
VIDEO = VPDQ / "videos" / "chair-22-sd-grey-bar.mp4"


def start(tmp_path, *extra, db=None):
    """A server with --hma on a new store; returns (url, proc)."""
    db = db or tmp_path / "s.db"
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0",
                             "--hma", *map(str, extra)], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    drain(proc)
    m = re.search(r"listen=127\.0\.0\.1:(\d+)$", line.strip())
    assert m, line
    return f"http://127.0.0.1:{m.group(1)}", proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log_text(proc)


@pytest.fixture
def hma(tmp_path):
    url, proc = start(tmp_path)
    yield url
    stop(proc)


def photo(name):
    return {"photo": (name, (SAMPLES / name).read_bytes(), "image/jpeg")}


def missing(field, given):
    """pydantic's 422 item for a missing field (as flask-openapi3 answers)."""
    return {"type": "missing", "loc": [field], "msg": "Field required", "input": given,
            "url": "https://errors.pydantic.dev/2.11/v/missing"}


def test_hma_client_sequence(hma):
    s = requests.Session()
    # Status, open to all.
    r = s.get(hma + "/status")
    assert (r.status_code, r.text) == (200, "I-AM-ALIVE")
    assert s.get(hma + "/status/live").text == "I-AM-ALIVE"
    assert "/m/lookup" in s.get(hma + "/site-map").json()

    # Banks: a client checks, creates, is refused a bad name and a repeat.
    r = s.get(hma + "/c/bank/TEST_BANK")
    assert (r.status_code, r.json()) == (404, {"message": "bank 'TEST_BANK' not found"})
    r = s.post(hma + "/c/banks", json={"name": "TEST_BANK", "enabled_ratio": "1"})
    assert (r.status_code, r.json()) == (201, {"name": "TEST_BANK", "matching_enabled_ratio": 1.0})
    r = s.post(hma + "/c/banks", json={"name": "bad_name", "enabled": "true",
                                       "matching_enabled_ratio": 1.0})
    assert (r.status_code, r.json()) == (400, {"message": "Bank names must be UPPER_WITH_UNDERSCORE"})
    r = s.post(hma + "/c/banks", json={"name": "TEST_BANK"})
    assert (r.status_code, r.json()) == (403, {"message": "Bank already exists"})
    r = s.post(hma + "/c/banks", json={"enabled_ratio": 0.5})
    assert (r.status_code, r.json()) == (422, [missing("name", {"enabled_ratio": 0.5})])
    r = s.post(hma + "/c/banks", json={"name": "OTHER_BANK", "enabled_ratio": 0.3})
    assert r.json() == {"name": "OTHER_BANK", "matching_enabled_ratio": 0.3}
    assert s.get(hma + "/c/banks").json() == [
        {"name": "OTHER_BANK", "matching_enabled_ratio": 0.3},
        {"name": "TEST_BANK", "matching_enabled_ratio": 1.0}]
    assert s.get(hma + "/c/bank/TEST_BANK").json() == {"name": "TEST_BANK",
                                                       "matching_enabled_ratio": 1.0}

    # Content: a photo with metadata and a note, a signal, both ids ints.
    r = s.post(hma + "/c/bank/TEST_BANK/content", files=photo("bridge.jpg"),
               data={"metadata": json.dumps({"content_id": "c-1", "content_uri": "https://x/1",
                                             "json": {"case": 7}}), "note": "first"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "signals"} and isinstance(body["id"], int)
    assert body["signals"] == {"pdq": BRIDGE}
    bridge_id = body["id"]
    r = s.post(hma + "/c/bank/TEST_BANK/signal", json={"pdq": STREET, "note": "by hash"})
    assert r.status_code == 200 and r.json()["signals"] == {"pdq": STREET}
    street_id = r.json()["id"]
    assert street_id != bridge_id
    r = s.post(hma + "/c/bank/NO_BANK/signal", json={"pdq": STREET})
    assert (r.status_code, r.json()) == (404, {"message": "bank 'NO_BANK' not found"})
    for sig, message in ((
            {"pdq": "XYZ"}, "Invalid pdq signal: invalid PDQ hash"),
            ({"tmk": "x"}, "No such signal type tmk"),
            ({}, "No signals given"),
            ({"video_md5": "nope"}, "Invalid video_md5 signal: 'nope' is not a valid MD5 hash")):
        r = s.post(hma + "/c/bank/TEST_BANK/signal", json=sig)
        assert (r.status_code, r.json()) == (400, {"message": message}), sig
    r = s.post(hma + "/c/bank/TEST_BANK/content")
    assert (r.status_code, r.json()) == (
        400, {"message": "Neither `url` nor multipart file upload was received"})
    r = s.post(hma + "/c/bank/TEST_BANK/content", files=photo("bridge.jpg"),
               data={"metadata": json.dumps({"color": "red"})})
    assert r.status_code == 400 and r.json()["message"].startswith("Invalid metadata: ")
    r = s.post(hma + "/c/bank/TEST_BANK/content",
               files={"document": ("a.jpg", (SAMPLES / "bridge.jpg").read_bytes())})
    assert (r.status_code, r.json()) == (400, {"message": "no such content_type: 'document'"})

    # Lookups by signal: every bank's matches keyed by name, distance a string.
    r = s.get(hma + "/m/lookup", params={"signal_type": "pdq", "signal": BRIDGE_SMALL})
    assert (r.status_code, r.json()) == (200, {"TEST_BANK": [{"bank_content_id": bridge_id,
                                                              "distance": "14"}]})
    # A filter naming a bank that does not exist is no error.
    r = s.get(hma + "/m/lookup", params={"signal_type": "pdq", "signal": BRIDGE,
                                         "banks": "NOT_A_BANK,TEST_BANK"})
    assert r.json() == {"TEST_BANK": [{"bank_content_id": bridge_id, "distance": "0"}]}
    r = s.get(hma + "/m/lookup", params={"signal_type": "pdq", "signal": BRIDGE,
                                         "banks": "NOT_A_BANK"})
    assert (r.status_code, r.json()) == (200, {})
    r = s.get(hma + "/m/lookup", params={"signal": BRIDGE})
    assert (r.status_code, r.json()) == (
        400, {"message": "Either url or both signal and signal_type are required"})
    r = s.get(hma + "/m/lookup", params={"signal_type": "tmk", "signal": BRIDGE})
    assert (r.status_code, r.json()) == (400, {"message": "No such SignalType 'tmk'"})
    r = s.get(hma + "/m/lookup", params={"signal_type": "pdq", "signal": "ab"})
    assert (r.status_code, r.json()) == (400, {"message": "invalid signal: invalid PDQ hash"})
    r = s.get(hma + "/m/raw_lookup", params={"signal_type": "pdq", "signal": BRIDGE})
    assert (r.status_code, r.json()) == (200, {"matches": [bridge_id]})
    r = s.get(hma + "/m/raw_lookup", params={"signal_type": "pdq", "signal": BRIDGE_SMALL,
                                             "include_distance": "true"})
    assert r.json() == {"matches": [{"bank_content_id": bridge_id, "distance": "14"}]}
    r = s.get(hma + "/m/raw_lookup", params={"signal_type": "pdq"})
    assert (r.status_code, r.json()) == (422, [missing("signal", {"signal_type": "pdq"})])
    r = s.get(hma + "/m/raw_lookup", params={"signal_type": "pdq", "signal": BRIDGE,
                                             "include_distance": "maybe"})
    assert r.status_code == 422 and r.json()[0]["type"] == "bool_parsing"

    # Lookups by file, and hashing.
    r = s.post(hma + "/m/lookup", files=photo("bridge-small.jpg"))
    assert r.json() == {"pdq": {"TEST_BANK": [{"bank_content_id": bridge_id, "distance": "14"}]}}
    r = s.post(hma + "/h/hash", files=photo("street.jpg"))
    assert (r.status_code, r.json()) == (200, {"pdq": STREET})
    r = s.post(hma + "/h/hash", data={"x": "1"})
    assert (r.status_code, r.json()) == (400, {"message": "Missing multipart/form-data file upload"})
    r = s.post(hma + "/h/hash", files={"photo": ("a.jpg", b"1"), "video": ("b.mp4", b"2")})
    assert (r.status_code, r.json()) == (400, {"message": "Only one file allowed per request"})

    # Compare.
    r = s.post(hma + "/m/compare", json={"pdq": [BRIDGE, BRIDGE_SMALL]})
    assert (r.status_code, r.json()) == (200, {"pdq": [True, {"distance": 14}]})
    r = s.post(hma + "/m/compare", json={"pdq": [BRIDGE, STREET]})
    assert r.json()["pdq"][0] is False
    for body, message in (([], "Request input was not a dict"),
                          ({"pdq": BRIDGE}, "Comparison hashes for pdq was not a list"),
                          ({"pdq": [BRIDGE]}, "Comparison hash list length must be exactly 2"),
                          ({"tmk": ["a", "b"]}, "No such SignalType 'tmk'"),
                          ({"pdq": [BRIDGE, "x"]}, "Invalid pdq hash: invalid PDQ hash")):
        r = s.post(hma + "/m/compare", json=body)
        assert (r.status_code, r.json()) == (400, {"message": message}), body

    # The index is always there, up to date.
    st = s.get(hma + "/m/index/status").json()
    assert set(st) == {"pdq", "video_md5", "vpdq"}
    assert st["pdq"]["present"] is True and st["pdq"]["size"] == 2
    assert isinstance(st["pdq"]["built_to"], int) and st["pdq"]["built_to"] > 0
    r = s.get(hma + "/m/index/status", params={"signal_type": "tmk"})
    assert (r.status_code, r.json()) == (400, {"message": "No such signal type 'tmk'"})
    idx = s.get(hma + "/c/signal_type/index").json()["pdq"]
    assert set(idx) == {"db_size", "index_size", "index_out_of_date", "newest_db_item",
                        "index_built_to"} and idx["index_out_of_date"] is False
    assert s.get(hma + "/c/signal_type").json() == [
        {"name": "pdq", "enabled_ratio": 1.0}, {"name": "video_md5", "enabled_ratio": 1.0},
        {"name": "vpdq", "enabled_ratio": 1.0}]
    assert s.get(hma + "/c/content_type").json() == [{"name": "photo", "enabled": True},
                                                     {"name": "video", "enabled": True}]
    assert s.get(hma + "/c/exchanges").json() == []
    assert s.get(hma + "/c/exchanges/apis").json() == ["ncmec", "stop_ncii", "fb_threatexchange",
                                                       "tat"]
    r = s.get(hma + "/c/exchange/NCMEC")
    assert (r.status_code, r.json()) == (404, {"message": "Exchange 'NCMEC' not found"})

    # Content get, update, delete.
    r = s.get(hma + f"/c/bank/TEST_BANK/content/{bridge_id}", params={"include_signals": "true"})
    assert r.json() == {
        "id": bridge_id, "disable_until_ts": 1, "original_media_uri": None,
        "bank": {"name": "TEST_BANK", "matching_enabled_ratio": 1.0},
        "signals": {"pdq": BRIDGE},
        "metadata": {"content_id": "c-1", "content_uri": "https://x/1", "json": {"case": 7},
                     "collab": None},
        "note": "first"}
    r = s.get(hma + f"/c/bank/TEST_BANK/content/{bridge_id}", params={"include_metadata": "false"})
    assert set(r.json()) == {"id", "disable_until_ts", "original_media_uri", "bank", "note"}
    r = s.get(hma + "/c/bank/TEST_BANK/content/999999")
    assert (r.status_code, r.json()) == (404, {"message": "content '999999' not found"})
    r = s.get(hma + "/c/bank/TEST_BANK/content/abc")
    assert r.status_code == 404
    r = s.put(hma + f"/c/bank/TEST_BANK/content/{bridge_id}", json={"note": "second"})
    assert r.status_code == 200
    assert r.json() == {"id": bridge_id, "disable_until_ts": 1, "collab_metadata": {},
                        "original_media_uri": None,
                        "bank": {"name": "TEST_BANK", "matching_enabled_ratio": 1.0},
                        "user_metadata": {"content_id": "c-1", "content_uri": "https://x/1",
                                          "json": {"case": 7}},
                        "note": "second"}
    for body, message in (({"disable_until_ts": -5},
                           "disable_until_ts must be a non-negative integer"),
                          ({"disable_until_ts": int(time.time()) + 6 * 365 * 86400},
                           "disable_until_ts must be less than 5 years in the future"),
                          ({"disable_until_ts": "soon"}, "Invalid int: 'soon'"),
                          ({"note": "x" * 256}, "note must be at most 255 characters"),
                          ({"note": 5}, "note should be a string")):
        r = s.put(hma + f"/c/bank/TEST_BANK/content/{bridge_id}", json=body)
        assert (r.status_code, r.json()) == (400, {"message": message}), body
    r = s.delete(hma + f"/c/bank/TEST_BANK/content/{street_id}")
    assert (r.status_code, r.json()) == (200, {"deleted": 1})
    r = s.delete(hma + f"/c/bank/TEST_BANK/content/{street_id}")
    assert r.json() == {"deleted": 0}
    r = s.get(hma + "/m/raw_lookup", params={"signal_type": "pdq", "signal": STREET})
    assert r.json() == {"matches": []}

    # Banks renamed (their content with them) and deleted, "Done" even when absent.
    r = s.put(hma + "/c/bank/TEST_BANK", json={"name": "RENAMED"})
    assert r.json() == {"name": "RENAMED", "matching_enabled_ratio": 1.0}
    r = s.put(hma + "/c/bank/RENAMED", json={"name": "OTHER_BANK"})
    assert (r.status_code, r.json()) == (403, {"message": "Bank name already exists"})
    r = s.put(hma + "/c/bank/NOPE", json={"enabled": False})
    assert (r.status_code, r.json()) == (404, {"message": "Bank not found"})
    r = s.get(hma + "/m/lookup", params={"signal_type": "pdq", "signal": BRIDGE})
    assert r.json() == {"RENAMED": [{"bank_content_id": bridge_id, "distance": "0"}]}
    for name in ("RENAMED", "NEVER_WAS"):
        r = s.delete(hma + "/c/bank/" + name)
        assert (r.status_code, r.json()) == (200, {"message": "Done"})
    assert s.get(hma + "/m/raw_lookup",
                 params={"signal_type": "pdq", "signal": BRIDGE}).json() == {"matches": []}
    # Coop joins its base URL ending in '/' to the path: "//c/banks".
    assert s.get(hma + "//c/banks").json() == [{"name": "OTHER_BANK",
                                                "matching_enabled_ratio": 0.3}]


def test_disabled_content_and_banks_do_not_match(hma):
    s = requests.Session()
    s.post(hma + "/c/banks", json={"name": "B"})
    cid = s.post(hma + "/c/bank/B/signal", json={"pdq": BRIDGE}).json()["id"]
    lookup = {"signal_type": "pdq", "signal": BRIDGE}
    found = {"B": [{"bank_content_id": cid, "distance": "0"}]}
    assert s.get(hma + "/m/lookup", params=lookup).json() == found

    # Content disabled for an hour: no match (raw_lookup, as HMA's, sees it).
    r = s.put(hma + f"/c/bank/B/content/{cid}",
              json={"disable_until_ts": int(time.time()) + 3600})
    assert r.status_code == 200
    assert s.get(hma + "/m/lookup", params=lookup).json() == {}
    assert s.get(hma + "/m/raw_lookup", params=lookup).json() == {"matches": [cid]}
    assert s.get(hma + "/v1/lookup", params={"hash": BRIDGE}).json()["matches"] == []
    # Disabled for good (0), then enabled again (1).
    s.put(hma + f"/c/bank/B/content/{cid}", json={"disable_until_ts": 0})
    assert s.get(hma + "/m/lookup", params=lookup).json() == {}
    s.put(hma + f"/c/bank/B/content/{cid}", json={"disable_until_ts": 1})
    assert s.get(hma + "/m/lookup", params=lookup).json() == found
    assert len(s.get(hma + "/v1/lookup", params={"hash": BRIDGE}).json()["matches"]) == 1

    # The bank disabled: no match, but under bypass_coinflip; back when enabled.
    r = s.put(hma + "/c/bank/B", json={"enabled": False})
    assert r.json() == {"name": "B", "matching_enabled_ratio": 0.0}
    assert s.get(hma + "/m/lookup", params=lookup).json() == {}
    assert s.get(hma + "/v1/lookup", params={"hash": BRIDGE}).json()["matches"] == []
    r = s.post(hma + "/m/lookup", files=photo("bridge.jpg"), params={"bypass_coinflip": "true"})
    assert r.json() == {"pdq": found}
    assert s.post(hma + "/m/lookup", files=photo("bridge.jpg")).json() == {"pdq": {}}
    s.put(hma + "/c/bank/B", json={"enabled": True})
    assert s.get(hma + "/m/lookup", params=lookup).json() == found

    # A ratio between: the same seed, the same answer; over many seeds, a share.
    s.put(hma + "/c/bank/B", json={"enabled_ratio": 0.5})
    answers = [bool(s.get(hma + "/m/lookup", params={**lookup, "seed": str(i)}).json())
               for i in range(60)]
    assert 10 < sum(answers) < 50
    again = [bool(s.get(hma + "/m/lookup", params={**lookup, "seed": str(i)}).json())
             for i in range(60)]
    assert again == answers


def test_hma_and_pdqmatch_see_the_same_content(hma):
    s = requests.Session()
    s.post(hma + "/c/banks", json={"name": "SHARED"})
    cid = s.post(hma + "/c/bank/SHARED/signal", json={"pdq": BRIDGE}).json()["id"]
    # Added through HMA: named by its number in pdqmatch's API.
    item = s.get(hma + f"/v1/banks/SHARED/content/{cid}").json()
    assert (item["content_id"], item["number"], item["hashes"][0]["hash"]) == (str(cid), cid, BRIDGE)
    # Added through pdqmatch: found by HMA, its id and metadata as HMA's metadata.
    r = s.post(hma + "/v1/banks/SHARED/hashes",
               json={"items": [{"hash": STREET, "content_id": "photo-9",
                                "metadata": {"case": 12}}]})
    assert r.status_code == 200
    r = s.get(hma + "/m/lookup", params={"signal_type": "pdq", "signal": STREET})
    number = r.json()["SHARED"][0]["bank_content_id"]
    assert number == s.get(hma + "/v1/banks/SHARED/content/photo-9").json()["number"]
    r = s.get(hma + f"/c/bank/SHARED/content/{number}", params={"include_signals": "true"})
    assert r.json()["metadata"] == {"content_id": "photo-9", "content_uri": None,
                                    "json": {"case": 12}, "collab": None}
    assert r.json()["signals"] == {"pdq": STREET}
    # Banks of pdqmatch's own names are listed; their state shows in both.
    s.post(hma + "/v1/banks", json={"name": "lower-case", "enabled_ratio": 0.25})
    assert {"name": "lower-case", "matching_enabled_ratio": 0.25} in s.get(hma + "/c/banks").json()
    assert s.get(hma + "/v1/banks/lower-case").json()["enabled_ratio"] == 0.25


def test_hma_video_signals(hma):
    s = requests.Session()
    s.post(hma + "/c/banks", json={"name": "VIDEOS"})
    data = VIDEO.read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    r = s.post(hma + "/h/hash", files={"video": ("v.mp4", data, "video/mp4")})
    assert r.status_code == 200, r.text
    sig = r.json()
    assert set(sig) == {"video_md5", "vpdq"} and sig["video_md5"] == md5
    frames = json.loads(sig["vpdq"])
    assert len(frames) >= 5 and all(len(f.split(",")) == 3 for f in frames)
    # Every frame hash is one of the reference's, at a frame a second.
    ref = {line.split(",")[2] for line in
           (VPDQ / "reference-outputs" / "full-default" / (VIDEO.stem + ".txt")).read_text().split()}
    assert {f.split(",")[0] for f in frames} <= ref

    r = s.post(hma + "/c/bank/VIDEOS/content", files={"video": ("v.mp4", data, "video/mp4")})
    assert r.status_code == 200, r.text
    vid = r.json()["id"]
    assert r.json()["signals"] == sig
    r = s.get(hma + "/m/lookup", params={"signal_type": "video_md5", "signal": md5.upper()})
    assert r.json() == {"VIDEOS": [{"bank_content_id": vid, "distance": "-"}]}
    r = s.get(hma + "/m/lookup", params={"signal_type": "vpdq", "signal": sig["vpdq"]})
    assert r.json() == {"VIDEOS": [{"bank_content_id": vid, "distance": "100%[100%]"}]}
    r = s.post(hma + "/m/lookup", files={"video": ("v.mp4", data, "video/mp4")})
    assert r.json() == {"video_md5": {"VIDEOS": [{"bank_content_id": vid, "distance": "-"}]},
                        "vpdq": {"VIDEOS": [{"bank_content_id": vid, "distance": "100%[100%]"}]}}
    r = s.post(hma + "/m/compare", json={"vpdq": [sig["vpdq"], sig["vpdq"]]})
    assert r.json() == {"vpdq": [True, {"query_match_percent": 100.0,
                                        "compared_match_percent": 100.0}]}
    # A video known by its MD5 alone (HMA's default signals) is found by it.
    other = "0123456789abcdef0123456789abcdef"
    r = s.post(hma + "/c/bank/VIDEOS/signal", json={"video_md5": other})
    only_md5 = r.json()["id"]
    r = s.get(hma + "/m/raw_lookup", params={"signal_type": "video_md5", "signal": other})
    assert r.json() == {"matches": [only_md5]}
    r = s.get(hma + f"/c/bank/VIDEOS/content/{only_md5}", params={"include_signals": "true"})
    assert r.json()["signals"] == {"video_md5": other}
    # A pdq lookup never finds a video's frames (HMA keeps them apart).
    assert s.get(hma + "/m/lookup", params={"signal_type": "pdq",
                                            "signal": frames[2].split(",")[0]}).json() == {}


def test_hma_routes_take_the_keys(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("r" * 20 + " read reader\n" + "w" * 20 + " write writer\n" +
                    "a" * 20 + " admin boss\n")
    keys.chmod(0o600)
    url, proc = start(tmp_path, "--api-keys", keys)
    try:
        for path in ("/status", "/status/live", "/site-map"):
            assert requests.get(url + path).status_code == 200
        r = requests.get(url + "/m/lookup", params={"signal_type": "pdq", "signal": BRIDGE})
        assert r.status_code == 401 and "message" in r.json()
        r = requests.get(url + "/m/lookup", params={"signal_type": "pdq", "signal": BRIDGE},
                         headers={"Authorization": "bearer " + "r" * 20})
        assert (r.status_code, r.json()) == (200, {})
        r = requests.post(url + "/c/banks", json={"name": "B"},
                          headers={"Authorization": "Bearer " + "w" * 20})
        assert r.status_code == 403
        r = requests.post(url + "/c/banks", json={"name": "B"},
                          headers={"Authorization": "Bearer " + "a" * 20})
        assert r.status_code == 201
    finally:
        stop(proc)


# ---------------------------------------------------------------------------
# Fetching by URL

class StandIn(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 with a few paths, recording each request."""
    daemon_threads = True


def stand_in():
    seen = []
    big = b"\xff" * (3 << 20)
    image = (SAMPLES / "bridge.jpg").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(self.path)
            port = self.server.server_address[1]
            if self.path == "/bridge.jpg":
                self.reply(200, image, "image/jpeg")
            elif self.path == "/noext":
                self.reply(200, image, "application/octet-stream")
            elif self.path == "/same-host":
                self.redirect(f"http://127.0.0.1:{port}/bridge.jpg")
            elif self.path == "/other-host":
                self.redirect(f"http://localhost:{port}/bridge.jpg")
            elif self.path == "/big":
                self.reply(200, big, "image/jpeg")
            elif self.path == "/big-chunked":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(big), 65536):
                    chunk = big[i:i + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif self.path == "/slow":
                time.sleep(4)
                self.reply(200, image, "image/jpeg")
            else:
                self.reply(404, b"no", "text/plain")

        def reply(self, code, body, ctype):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass

        def redirect(self, where):
            self.send_response(302)
            self.send_header("Location", where)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = StandIn(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, seen


def test_fetch_by_url_and_each_refusal(tmp_path):
    srv, seen = stand_in()
    port = srv.server_address[1]
    origin = f"http://127.0.0.1:{port}"
    url, proc = start(tmp_path, "--fetch-allow-hosts", "127.0.0.1", "--fetch-max-bytes",
                      1 << 20, "--fetch-timeout", 2)
    s = requests.Session()
    try:
        r = s.get(url + "/h/hash", params={"url": origin + "/bridge.jpg"})
        assert (r.status_code, r.json()) == (200, {"pdq": BRIDGE})
        r = s.get(url + "/h/hash", params={"url": origin + "/same-host"})
        assert (r.status_code, r.json()) == (200, {"pdq": BRIDGE})
        # No content type from the server: it must be given.
        r = s.get(url + "/h/hash", params={"url": origin + "/noext"})
        assert r.status_code == 400 and r.json()["message"].startswith(
            "unsupported url ContentType: 'application/octet-stream'")
        r = s.get(url + "/h/hash", params={"url": origin + "/noext", "content_type": "photo"})
        assert r.json() == {"pdq": BRIDGE}
        r = s.get(url + "/h/hash")
        assert r.status_code == 422 and r.json()[0]["loc"] == ["url"]

        # Added and looked up by URL.
        s.post(url + "/c/banks", json={"name": "B"})
        r = s.post(url + "/c/bank/B/content", params={"url": origin + "/bridge.jpg"},
                   json={"metadata": {"content_uri": origin + "/bridge.jpg"}, "note": "n"})
        assert r.status_code == 200 and r.json()["signals"] == {"pdq": BRIDGE}
        cid = r.json()["id"]
        r = s.get(url + "/m/lookup", params={"url": origin + "/bridge.jpg"})
        assert r.json() == {"pdq": {"B": [{"bank_content_id": cid, "distance": "0"}]}}
        r = s.get(url + "/m/lookup", params={"url": origin + "/bridge.jpg", "signal_type": "pdq"})
        assert r.json() == {"B": [{"bank_content_id": cid, "distance": "0"}]}

        # Each refusal: HMA's 400, and nothing fetched beyond what the check needs.
        unsafe = {"message": "Invalid or unsafe URL provided"}
        for target in (f"http://localhost:{port}/bridge.jpg",    # loopback, not by address
                       f"http://127.0.0.2:{port}/bridge.jpg",    # loopback, not allowed
                       "http://10.1.2.3/bridge.jpg",             # private
                       "http://169.254.169.254/latest/meta-data/",   # cloud metadata
                       f"http://0x7f000002:{port}/bridge.jpg",   # 127.0.0.2 spelt otherwise
                       "http://example.org/bridge.jpg",          # a host not allowed
                       f"ftp://127.0.0.1:{port}/bridge.jpg",     # not http(s)
                       "not a url"):
            before = list(seen)
            r = s.get(url + "/h/hash", params={"url": target})
            assert (r.status_code, r.json()) == (400, unsafe), target
            assert seen == before, target
        before = len(seen)
        r = s.get(url + "/h/hash", params={"url": origin + "/other-host"})
        assert (r.status_code, r.json()) == (400, unsafe)
        assert seen[before:] == ["/other-host"]                 # the redirect, not its target
        r = s.get(url + "/h/hash", params={"url": origin + "/big"})
        assert (r.status_code, r.json()) == (413, {"message": "Content too large"})
        r = s.get(url + "/h/hash", params={"url": origin + "/big-chunked"})
        assert (r.status_code, r.json()) == (413, {"message": "Content too large"})
        t0 = time.monotonic()
        r = s.get(url + "/h/hash", params={"url": origin + "/slow"})
        assert r.status_code == 400 and r.json()["message"].startswith("Failed to fetch URL: ")
        assert time.monotonic() - t0 < 4
        r = s.get(url + "/h/hash", params={"url": origin + "/missing"})
        assert r.status_code == 400 and "404" in r.json()["message"]
    finally:
        stop(proc)
        srv.shutdown()


def test_fetch_is_off_without_allowed_hosts(tmp_path):
    srv, seen = stand_in()
    url, proc = start(tmp_path)
    try:
        r = requests.get(url + "/h/hash",
                         params={"url": f"http://127.0.0.1:{srv.server_address[1]}/bridge.jpg"})
        assert (r.status_code, r.json()) == (400, {"message": "Invalid or unsafe URL provided"})
        assert seen == []
    finally:
        stop(proc)
        srv.shutdown()
    p = run("serve", "--db", tmp_path / "x.db", "--create", "--fetch-allow-hosts", "a.test")
    assert p.returncode == 2 and "--hma" in p.stderr
    p = run("serve", "--db", tmp_path / "x.db", "--create", "--hma",
            "--fetch-allow-hosts", "bad host!")
    assert p.returncode == 2 and "not a host name" in p.stderr


def test_without_hma_the_routes_are_not_there(server):
    url, _, _ = server
    r = requests.get(url + "/m/lookup", params={"signal_type": "pdq", "signal": BRIDGE})
    assert r.status_code == 404 and "error" in r.json()


def test_export_and_import_keep_what_hma_sets(tmp_path):
    """An export holds a bank's enabled ratio, an item's disabled time and
    note, and an item known by its MD5 alone; importing it restores them
    (exporting the restored store gives the same bytes)."""
    url, proc = start(tmp_path)
    s = requests.Session()
    try:
        s.post(url + "/c/banks", json={"name": "KEPT", "enabled_ratio": 0.25})
        cid = s.post(url + "/c/bank/KEPT/signal", json={"pdq": BRIDGE, "note": "a note"}).json()["id"]
        s.put(url + f"/c/bank/KEPT/content/{cid}", json={"disable_until_ts": 0})
        s.post(url + "/c/bank/KEPT/signal", json={"video_md5": "0123456789abcdef0123456789abcdef"})
    finally:
        stop(proc)
    first = run("export", "--db", tmp_path / "s.db", "--format", "jsonl")
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert lines[1]["enabled_ratio"] == 0.25
    items = [x for x in lines if x.get("type") == "item"]
    assert (items[0]["disabled_until"], items[0]["note"]) == (-1, "a note")
    assert (items[1]["hashes"], items[1]["md5"]) == ([], "0123456789abcdef0123456789abcdef")
    dump = tmp_path / "dump.jsonl"
    dump.write_text(first.stdout)
    p = run("import", "--db", tmp_path / "t.db", dump)
    assert p.returncode == 0, p.stderr
    again = run("export", "--db", tmp_path / "t.db", "--format", "jsonl")
    assert again.stdout == first.stdout
    assert run("verify", "--db", tmp_path / "t.db").returncode == 0
