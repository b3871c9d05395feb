"""pdqmatch serve's log (issue 13, finding 3) and HTTP details (finding 6):
the start-up, access and shutdown records in both formats, request ids,
reopening on SIGHUP, the key file's mode, the Authorization scheme and
repeated Content-Length headers."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from helpers import BIN, SAMPLES, drain, log_text, run

KEY = "k" * 24
BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
FIELDS = {"ts", "level", "msg", "request_id", "method", "route", "status", "bytes_in",
          "bytes_out", "duration_ms"}


def serve(tmp_path, *extra, keys=True, mode=0o600):
    db = tmp_path / "s.db"
    if not db.exists():
        assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    args = [BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0", *map(str, extra)]
    if keys:
        keyfile = tmp_path / "keys"
        keyfile.write_text(f"{KEY} admin ops-team\n")
        os.chmod(keyfile, mode)
        args += ["--api-keys", str(keyfile)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    return proc


def listen_url(line):
    m = re.search(r'listen[=":]+127\.0\.0\.1:(\d+)', line)
    assert m, line
    return f"http://127.0.0.1:{m.group(1)}"


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def records(text):
    return [json.loads(line) for line in text.splitlines()]


def test_finding_3_access_log_json_has_every_field(tmp_path):
    proc = serve(tmp_path, "--log-format", "json")
    first = proc.stderr.readline()
    drain(proc)
    url = listen_url(first)
    auth = {"Authorization": "Bearer " + KEY}
    r = requests.get(url + "/v1/lookup", params={"hash": BRIDGE}, timeout=10,
                     headers={**auth, "X-Request-Id": "upload-42.a:b_c"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "upload-42.a:b_c"
    matches = len(r.json()["matches"])
    assert matches >= 1
    r = requests.post(url + "/v1/lookup", json={"hashes": [BRIDGE, BRIDGE]}, timeout=10,
                      headers=auth)
    assert r.status_code == 200
    secret_id = "victim-file-name.jpg"
    r = requests.get(url + "/v1/banks/photos/content/" + secret_id, timeout=10, headers=auth)
    assert r.status_code == 404
    r = requests.get(url + "/v1/stats", timeout=10)
    assert r.status_code == 401
    made = r.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    stop(proc)

    text = first + log_text(proc)
    assert secret_id not in text and KEY not in text
    recs = records(text)
    start, end = recs[0], recs[-1]
    assert start["msg"] == "started" and start["level"] == "info"
    for k in ("version", "store", "banks", "contents", "hashes", "listen", "auth", "tls",
              "max_connections", "max_body_memory"):
        assert k in start, k
    assert start["auth"] == "on" and start["contents"] > 0
    assert end["msg"] == "stopped" and "stopping" in [r["msg"] for r in recs[-6:]]
    access = [r for r in recs if r["msg"] == "request"]
    assert len(access) == 4
    for rec in access:
        assert FIELDS <= rec.keys(), rec
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["ts"])
        assert rec["duration_ms"] >= 0 and rec["bytes_out"] > 0
    # (Records are written as replies go out: their order may differ from
    # the requests'.)
    def one(**want):
        found = [r for r in access if all(r.get(k) == v for k, v in want.items())]
        assert len(found) == 1, (want, access)
        return found[0]
    get = one(method="GET", route="/v1/lookup")
    post = one(method="POST", route="/v1/lookup")
    content = one(status=404)
    unauth = one(status=401)
    assert (get["request_id"], get["method"], get["route"], get["status"]) == \
        ("upload-42.a:b_c", "GET", "/v1/lookup", 200)
    assert get["matches"] == matches and get["key"] == "ops-team"
    assert post["matches"] == 2 * matches and post["bytes_in"] > 0
    assert content["route"] == "/v1/banks/{name}/content/{content_id}"
    assert content["status"] == 404 and "matches" not in content
    assert unauth["status"] == 401 and unauth["request_id"] == made and "key" not in unauth


def test_finding_3_text_format_and_levels(tmp_path):
    proc = serve(tmp_path, keys=False)
    first = proc.stderr.readline()
    drain(proc)
    url = listen_url(first)
    assert re.match(r"\d{4}-\d\d-\d\dT\S+Z info started version=\S+ store=\S+ ", first)
    assert requests.get(url + "/healthz", timeout=10).ok
    stop(proc)
    # (A request's record is written once its reply is out, which may come
    # after the main thread logged "stopping": the order of those two is
    # not fixed; "stopped" is always last.)
    lines = log_text(proc).splitlines()
    request = [line for line in lines if " info request " in line]
    assert len(request) == 1
    assert re.fullmatch(r"\S+Z info request request_id=[0-9a-f]{16} method=GET "
                        r"route=/healthz status=200 bytes_in=0 bytes_out=\d+ "
                        r"duration_ms=[0-9.e-]+", request[0]), request[0]
    assert [line for line in lines if line.endswith(" info stopping signal=SIGTERM")]
    assert " info stopped store=" in lines[-1]

    # At warn, no record a request (and none at start).
    proc = serve(tmp_path, "--log-level", "warn", "--log-file", tmp_path / "warn.log",
                 keys=False)
    time.sleep(0.5)
    stop(proc)
    assert (tmp_path / "warn.log").read_text() == ""
    p = run("serve", "--db", tmp_path / "s.db", "--log-level", "loud")
    assert p.returncode == 2 and "--log-level is debug, info, warn or error" in p.stderr


def test_finding_3_request_ids_that_are_not_tokens_are_replaced(tmp_path):
    proc = serve(tmp_path, keys=False)
    url = listen_url(proc.stderr.readline())
    drain(proc)
    try:
        for bad in ("has space", "x" * 65, "semi;colon", "quote\""):
            r = requests.get(url + "/healthz", headers={"X-Request-Id": bad}, timeout=10)
            assert re.fullmatch(r"[0-9a-f]{16}", r.headers["X-Request-Id"]), bad
        ids = {requests.get(url + "/nope", timeout=10).headers["X-Request-Id"]
               for _ in range(20)}
        assert len(ids) == 20
        r = requests.get(url + "/healthz", headers={"X-Request-Id": "x" * 64}, timeout=10)
        assert r.headers["X-Request-Id"] == "x" * 64
    finally:
        stop(proc)


def test_finding_3_log_file_reopened_on_sighup(tmp_path):
    log = tmp_path / "serve.log"
    proc = serve(tmp_path, "--log-file", log, keys=False)
    for _ in range(100):
        if log.exists() and "listen=" in log.read_text():
            break
        time.sleep(0.05)
    url = listen_url(log.read_text())
    assert requests.get(url + "/healthz", timeout=10).ok
    # A request's record is written once its reply is out (and access
    # records are gathered for up to 0.1 s): wait for it, or it may land
    # in either file, as with any rotation.
    for _ in range(100):
        if "route=/healthz" in log.read_text():
            break
        time.sleep(0.05)
    log.rename(tmp_path / "serve.log.1")
    proc.send_signal(signal.SIGHUP)
    for _ in range(100):
        if log.exists():
            break
        time.sleep(0.05)
    assert requests.get(url + "/readyz", timeout=10).ok
    stop(proc)
    old = (tmp_path / "serve.log.1").read_text()
    new = log.read_text()
    assert "route=/healthz" in old and "route=/readyz" not in old
    assert " info reopened the log signal=SIGHUP" in new and "route=/readyz" in new
    assert new.rstrip().endswith("info stopped store=" + str(tmp_path / "s.db"))
    assert proc.stderr.read() == ""


@pytest.mark.parametrize("mode,warned", [(0o600, False), (0o640, True), (0o644, True)])
def test_finding_6_key_file_open_to_others_is_warned(tmp_path, mode, warned):
    proc = serve(tmp_path, mode=mode)
    proc.stderr.readline()
    drain(proc)
    time.sleep(0.3)
    stop(proc)
    text = log_text(proc)
    line = f"warn the key file is open to group or others file={tmp_path / 'keys'} " \
           f"mode={mode:04o} fix=\"chmod 600\""
    assert (line in text) == warned, text


@pytest.mark.parametrize("header", ["bearer " + KEY, "BEARER " + KEY, "Bearer   " + KEY,
                                    "bEaReR " + KEY])
def test_finding_6_bearer_scheme_is_case_insensitive(tmp_path, header):
    proc = serve(tmp_path)
    url = listen_url(proc.stderr.readline())
    drain(proc)
    try:
        r = requests.get(url + "/v1/stats", headers={"Authorization": header}, timeout=10)
        assert r.status_code == 200, r.text
        r = requests.get(url + "/v1/stats", headers={"Authorization": "Basic " + KEY},
                         timeout=10)
        assert r.status_code == 401
    finally:
        stop(proc)


def raw_request(url, data):
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_finding_6_two_content_lengths_are_refused(tmp_path):
    proc = serve(tmp_path, keys=False)
    url = listen_url(proc.stderr.readline())
    drain(proc)
    try:
        body = b'{"hashes":["' + BRIDGE.encode() + b'"]}'
        for second in (b"5", str(len(body)).encode()):
            out = raw_request(url, b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\n"
                              b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                              b"content-length: " + second + b"\r\n"
                              b"Connection: close\r\n\r\n" + body)
            head, _, reply = out.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 "), out
            assert json.loads(reply) == {"error": {
                "code": "invalid", "message": "more than one Content-Length header"}}
        # One length is fine.
        out = raw_request(url, b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                          b"Connection: close\r\n\r\n" + body)
        assert out.startswith(b"HTTP/1.1 200 ")
    finally:
        stop(proc)
