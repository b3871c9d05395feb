"""pdqmatch serve: the first routes, error replies, loopback-only without
keys, and a clean stop on SIGTERM."""
import signal
import subprocess
import time

import pytest
import requests

from helpers import run, drain, log_text


BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


def test_health_and_lookup(server):
    url, proc, db = server
    assert requests.get(url + "/healthz", timeout=10).json() == {"status": "ok"}
    r = requests.get(url + "/readyz", timeout=10)
    assert (r.status_code, r.json()) == (200, {"status": "ready", "hashes": 5, "writable": True})
    r = requests.get(url + "/v1/lookup", params={"hash": BRIDGE.upper()}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["query"] == BRIDGE
    assert [(m["content_id"], m["distance"]) for m in body["matches"]] == \
        [("bridge.jpg", 0), ("bridge-small.jpg", 14)]
    r = requests.get(url + "/v1/lookup", params={"hash": BRIDGE, "max_distance": "0"}, timeout=10)
    assert [m["content_id"] for m in r.json()["matches"]] == ["bridge.jpg"]
    r = requests.get(url + "/v1/lookup", params={"hash": BRIDGE, "banks": "photos"}, timeout=10)
    assert len(r.json()["matches"]) == 2


@pytest.mark.parametrize("path,params,method,status,code,message", [
    ("/v1/lookup", {}, "GET", 400, "invalid", "the 'hash' parameter is required"),
    ("/v1/lookup", {"hash": "abc"}, "GET", 400, "invalid", "a PDQ hash is 64 hex characters, not 3"),
    ("/v1/lookup", {"hash": BRIDGE, "max_distance": "300"}, "GET", 400, "invalid",
     "max_distance is a number from 0 to 256"),
    ("/v1/lookup", {"hash": BRIDGE, "banks": "nope"}, "GET", 404, "not_found", "no bank 'nope'"),
    ("/nowhere", {}, "GET", 404, "not_found", "no route /nowhere"),
    ("/healthz", {}, "DELETE", 405, "method_not_allowed", "DELETE is not allowed on /healthz"),
])
def test_errors(server, path, params, method, status, code, message):
    url, proc, db = server
    r = requests.request(method, url + path, params=params, timeout=10)
    assert r.status_code == status
    assert r.json() == {"error": {"code": code, "message": message}}


def test_refuses_public_addresses_without_keys(tmp_path):
    p = run("serve", "--db", tmp_path / "s.db", "--create", "--listen", "0.0.0.0:0", timeout=30)
    assert p.returncode == 2
    assert p.stderr == "pdqmatch: without API keys pdqmatch listens on loopback only, not on 0.0.0.0\n"


def test_sigterm_stops_cleanly(server):
    url, proc, db = server
    assert requests.get(url + "/healthz", timeout=10).ok
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    err = log_text(proc)
    assert " info stopping signal=SIGTERM\n" in err and " info stopped store=" in err
    assert run("verify", "--db", db).returncode == 0
