"""pdqmatch serve's media limits: configurable, answered with 413, the
server stays up with bounded memory, and nothing is stored."""
import os
import re
import socket
import signal
import struct
import subprocess
import time
import zlib

import pytest
import requests

from helpers import BIN, SAMPLES, VIDEOS, random_hashes, run, drain

JPEG = {"Content-Type": "image/jpeg"}


def bomb_png(side):
    """A valid grey PNG of side x side black pixels: a few hundred KB that
    decode to side*side bytes."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    z = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.fixture
def limited(tmp_path):
    db = tmp_path / "s.db"
    assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0",
                             "--max-image-bytes", "200000", "--max-duration", "5",
                             "--max-pixels", "2000000"], stderr=subprocess.PIPE, text=True)
    m = re.search(r":(\d+)$", proc.stderr.readline().strip())
    drain(proc)
    yield f"http://127.0.0.1:{m.group(1)}", proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def test_configured_limits_answer_413_and_store_nothing(limited):
    url, proc = limited
    before = requests.get(url + "/v1/stats", timeout=10).json()
    big = (SAMPLES / "bridge.jpg").read_bytes()          # 1600x1004, 361 KB
    r = requests.post(url + "/v1/banks/photos/media", data=big, headers=JPEG, timeout=30)
    assert len(big) > 200000
    assert (r.status_code, r.json()["error"]["message"]) == \
        (413, "an image is at most 200000 bytes")
    r = requests.post(url + "/v1/hash", data=(SAMPLES / "street.jpg").read_bytes(),
                      headers=JPEG, timeout=30)
    assert r.status_code == 200                          # small enough
    long_video = (VIDEOS / "chair-19-sd-bar.mp4").read_bytes()
    r = requests.post(url + "/v1/lookup/media", data=long_video,
                      headers={"Content-Type": "video/mp4"}, timeout=60)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    assert requests.get(url + "/v1/stats", timeout=10).json() == before


def test_decompression_bomb_png_is_refused_before_decoding(limited):
    url, proc = limited
    png = bomb_png(3000)                                  # 9 megapixels in ~10 KB
    assert len(png) < 100000
    for _ in range(5):
        r = requests.post(url + "/v1/hash", data=png, headers={"Content-Type": "image/png"},
                          timeout=30)
        assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    assert rss_mib(proc.pid) < 200
    assert requests.get(url + "/healthz", timeout=10).ok


def test_image_decoding_time_is_bounded(tmp_path):
    """A whole 1-bit PBM 1 pixel wide and 2,287,334 tall (286 KB) takes
    libvips seconds to read, row by row; --max-image-time gives up on it."""
    db = tmp_path / "s.db"
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0",
                             "--max-image-time", "1"], stderr=subprocess.PIPE, text=True)
    try:
        url = "http://127.0.0.1:" + re.search(r":(\d+)$", proc.stderr.readline().strip()).group(1)
        drain(proc)
        tall = b"P4\n1 2287334\n" + bytes(2287334)
        t0 = time.monotonic()
        r = requests.post(url + "/v1/hash", data=tall, headers={"Content-Type": "image/x-portable-bitmap"},
                          timeout=60)
        assert (r.status_code, r.json()["error"]) == \
            (413, {"code": "too_large", "message": "decoding took over 1 seconds"})
        assert time.monotonic() - t0 < 5   # unbounded, it is 8 s without sanitizers
        r = requests.post(url + "/v1/hash", data=(SAMPLES / "street.jpg").read_bytes(),
                          headers=JPEG, timeout=30)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


@pytest.fixture
def tight(tmp_path):
    """A server with a 2 s request deadline and 100 KB of body memory."""
    db = tmp_path / "s.db"
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0",
                             "--timeout", "2", "--max-body-memory", "100000"],
                            stderr=subprocess.PIPE, text=True)
    m = re.search(r":(\d+)$", proc.stderr.readline().strip())
    drain(proc)
    yield f"http://127.0.0.1:{m.group(1)}", int(m.group(1)), proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_a_body_sent_too_slowly_is_cut_off(tight):
    """A client that trickles its body, a byte every 0.7 s (never idle long
    enough for the idle timeout), is cut off at the 2 s request deadline.
    (libmicrohttpd cannot reply before the body is read: the connection is
    closed without a 408.)"""
    url, port, proc = tight
    import socket, time
    start = time.monotonic()
    closed_after = None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n")
        for _ in range(12):
            try:
                s.sendall(b" ")
                time.sleep(0.7)
                s.setblocking(False)
                data = s.recv(4096)
            except BlockingIOError:
                s.setblocking(True)
                continue
            except OSError:
                data = b""
            assert data == b""              # closed, with no reply
            closed_after = time.monotonic() - start
            break
    assert closed_after is not None and 2 <= closed_after < 4.5
    assert requests.get(url + "/healthz", timeout=10).ok


def test_bodies_past_the_memory_budget_get_429(tight):
    """Bodies held at once are budgeted, as their bytes arrive: with 48 KB
    held by a stalled upload, of the 50 KB one client may hold (half of a
    100 KB budget; without keys a client is a request), a body that would
    pass the budget gets 429 with Retry-After; once the upload is gone, the
    same body is served.  A declared length over the 50 KB is 413 at once."""
    url, port, proc = tight
    import socket, time
    jpeg = (SAMPLES / "street.jpg").read_bytes()
    assert 5000 < len(jpeg) < 50000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/hash HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: 49000\r\n\r\n" + b"\xff" * 48000)
        for _ in range(100):   # until the server has read what was sent
            metrics = requests.get(url + "/metrics", timeout=10).text
            if "pdqmatch_body_bytes 48000\n" in metrics:
                break
            time.sleep(0.05)
        assert "pdqmatch_body_bytes 48000\n" in metrics
        assert "pdqmatch_body_bytes_limit 100000\n" in metrics
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s2:
            s2.sendall(b"POST /v1/hash HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                       b"Content-Length: 49000\r\n\r\n" + b"\xff" * 48000)
            for _ in range(100):
                metrics = requests.get(url + "/metrics", timeout=10).text
                if "pdqmatch_body_bytes 96000\n" in metrics:
                    break
                time.sleep(0.05)
            assert "pdqmatch_body_bytes 96000\n" in metrics
            r = requests.post(url + "/v1/hash", data=jpeg, headers=JPEG, timeout=10)
            assert (r.status_code, r.headers.get("Retry-After"), r.json()["error"]["code"]) == \
                (429, "1", "too_many_requests")
        r = requests.post(url + "/v1/hash", data=b"\xff" * 50001, headers=JPEG, timeout=10)
        assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    for _ in range(50):        # the stalled requests are freed once their sockets close
        r = requests.post(url + "/v1/hash", data=jpeg, headers=JPEG, timeout=10)
        if r.status_code != 429:
            break
    assert r.status_code == 200
    assert r.json()["type"] == "image"
    for _ in range(100):       # each request gives its reservation back when it completes
        metrics = requests.get(url + "/metrics", timeout=10).text
        if "pdqmatch_body_bytes 0\n" in metrics:
            break
        time.sleep(0.05)
    assert "pdqmatch_body_bytes 0\n" in metrics
    assert proc.poll() is None


@pytest.mark.parametrize("length", [b"-1", b"abc", b"12x"])
def test_a_malformed_content_length_gets_400(tight, length):
    url, port, proc = tight
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + length + b"\r\n\r\n{}")
        reply = s.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 400 "), reply
    assert requests.get(url + "/healthz", timeout=10).ok


def test_deleted_hashes_give_back_their_lookup_memory(tmp_path):
    """Entry ids are never reused, so a server that adds and deletes would
    grow its lookup copy of the hashes for ever unless deleted ranges give
    their memory back.  Bank 'old' holds ids 0..139999: deleting it frees
    the two whole 2 MiB chunks (65536 ids each) it fills."""
    db = tmp_path / "s.db"
    old = random_hashes(140_000, 7)
    lst = tmp_path / "old.txt"
    lst.write_text("\n".join(old) + "\n")
    assert run("index", "--db", db, "--bank", "old", "--hash-list", lst).returncode == 0
    assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        url = "http://127.0.0.1:" + re.search(r":(\d+)$", proc.stderr.readline().strip()).group(1)
        drain(proc)
        r = requests.get(url + "/v1/lookup", params={"hash": old[70_000]}, timeout=10).json()
        assert [m["content_id"] for m in r["matches"]] == [old[70_000]]
        copied = requests.get(url + "/v1/stats", timeout=10).json()["hash_copy_bytes"]
        assert copied == 140_000 // 1023 * 1023 * 32    # every full block of records
        # 140,000 items in one transaction: seconds under the sanitizers.
        assert requests.delete(url + "/v1/banks/old", timeout=300).status_code == 200
        r = requests.get(url + "/v1/lookup", params={"hash": old[70_000]}, timeout=10).json()
        assert r["matches"] == []
        st = requests.get(url + "/v1/stats", timeout=10).json()
        assert st["hash_copy_bytes"] == copied - 2 * 2 * 1024 * 1024
        metrics = requests.get(url + "/metrics", timeout=10).text
        assert f"pdqmatch_hash_copy_bytes {copied - 4 * 1024 * 1024}\n" in metrics
        r = requests.get(url + "/v1/lookup", params={"hash": old[139_999]}, timeout=10).json()
        assert r["matches"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


ATTACKER, VICTIM = "attacker-key-0123456789", "victim-key-01234567890"


def keyed_server(tmp_path, *extra, first_key=f"{ATTACKER} read attacker"):
    """A server with two keys, first_key's line and VICTIM (admin), and
    bank b: (url, port, proc)."""
    keys = tmp_path / "keys"
    keys.write_text(f"{first_key}\n{VICTIM} admin victim\n")
    os.chmod(keys, 0o600)
    db = tmp_path / "s.db"
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0",
                             "--api-keys", str(keys), *map(str, extra)],
                            stderr=subprocess.PIPE, text=True)
    port = int(re.search(r":(\d+)$", proc.stderr.readline().strip()).group(1))
    drain(proc)
    url = f"http://127.0.0.1:{port}"
    r = requests.post(url + "/v1/banks", json={"name": "b"}, timeout=10,
                      headers={"Authorization": "Bearer " + VICTIM})
    assert r.status_code == 201
    return url, port, proc


def stalled_upload(port, key, length, sent):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/lookup/media HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
              b"Authorization: Bearer " + key.encode() + b"\r\n"
              b"Content-Length: " + str(length).encode() + b"\r\n\r\n" + b"\xff" * sent)
    return s


def victim_traffic(url, n=50):
    """n small body lookups and n small adds of the victim: their statuses."""
    auth = {"Authorization": "Bearer " + VICTIM}
    statuses = []
    for i, h in enumerate(random_hashes(n, seed=99)):
        r = requests.post(url + "/v1/lookup", json={"hashes": [h]}, headers=auth, timeout=10)
        statuses.append(r.status_code)
        r = requests.post(url + "/v1/banks/b/hashes", headers=auth, timeout=10,
                          json={"items": [{"hash": h, "content_id": f"v{i}"}]})
        statuses.append(r.status_code)
    return statuses


def test_finding_1_declared_lengths_do_not_starve_others(tmp_path):
    """Two connections declare 512 MiB bodies and send 2 bytes: before,
    the declared lengths were reserved and every body request of every
    client got 429 for the whole timeout."""
    url, port, proc = keyed_server(tmp_path)
    try:
        held = [stalled_upload(port, ATTACKER, 536870912, 2) for _ in range(2)]
        time.sleep(0.3)
        statuses = victim_traffic(url)
        assert statuses == [200] * 50 * 2, sorted(set(statuses))
        for s in held:
            s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_finding_1_one_key_holds_at_most_half_the_body_memory(tmp_path):
    """A key that really sends its bodies, slowly, holds at most half of
    --max-body-memory: its own third upload is refused, others are served."""
    url, port, proc = keyed_server(tmp_path, "--max-body-memory", 200000)
    try:
        held = [stalled_upload(port, ATTACKER, 90000, 60000) for _ in range(3)]
        time.sleep(0.5)
        metrics = requests.get(url + "/metrics", timeout=10,
                               headers={"Authorization": "Bearer " + VICTIM}).text
        held_bytes = int(re.search(r"^pdqmatch_body_bytes (\d+)$", metrics, re.M).group(1))
        assert held_bytes <= 100000          # two of the three, not 180 KB
        statuses = victim_traffic(url, 20)
        assert statuses == [200] * 40, sorted(set(statuses))
        big = {"hashes": random_hashes(900, seed=5)}    # a 60 KB body: fits the rest
        r = requests.post(url + "/v1/lookup", json=big, timeout=10,
                          headers={"Authorization": "Bearer " + VICTIM})
        assert r.status_code == 200
        for s in held:
            s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_rate_limits_per_key(tmp_path):
    """A key with rate=5 burst=5 sending 50 requests at once: 5 pass, the
    rest get 429 with Retry-After, counted in /metrics by its name; another
    key is unaffected, and a bad field in the key file is refused."""
    slow = "slow-key-0123456789abc"
    url, port, proc = keyed_server(tmp_path, first_key=f"{slow} read batch-job rate=5 burst=5")
    keys = tmp_path / "keys"
    try:
        s = requests.Session()
        t0 = time.monotonic()
        replies = [s.get(url + "/v1/stats", timeout=10,
                         headers={"Authorization": "Bearer " + slow}) for _ in range(50)]
        elapsed = time.monotonic() - t0
        codes = [r.status_code for r in replies]
        # The burst, and what refilled meanwhile (5 a second).
        assert 5 <= codes.count(200) <= 5 + 5 * elapsed + 1, (codes, elapsed)
        limited = [r for r in replies if r.status_code == 429]
        assert len(limited) == 50 - codes.count(200)
        for r in limited:
            assert r.json()["error"]["code"] == "rate_limited"
            assert r.headers["Retry-After"] == "1"
        other = [s.get(url + "/v1/stats", timeout=10,
                       headers={"Authorization": "Bearer " + VICTIM}).status_code
                 for _ in range(50)]
        assert other == [200] * 50
        metrics = s.get(url + "/metrics", timeout=10,
                        headers={"Authorization": "Bearer " + VICTIM}).text
        assert f'pdqmatch_rate_limited_total{{key="batch-job"}} {len(limited)}\n' in metrics
        assert 'key="victim"' not in metrics
        time.sleep(1.1)                 # 5 tokens a second: the key passes again
        assert s.get(url + "/v1/stats", timeout=10,
                     headers={"Authorization": "Bearer " + slow}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    for bad in ("rate=0", "rate=x", "burst=5", "rate=5 name", "rate=-1", "rate=5 burst="):
        keys.write_text(f"{slow} read {bad}\n")
        p = run("serve", "--db", tmp_path / "s.db", "--api-keys", keys)
        assert p.returncode == 2 and "[rate=R] [burst=B]" in p.stderr, (bad, p.stderr)


def test_finding_2_trickling_headers_are_cut_at_the_header_deadline(tmp_path):
    """Five connections of --max-connections 5 each send a header byte a
    second (never idle for --timeout 3): before, new clients were kept out
    for as long as the trickle lasted.  The header deadline (2 s) closes
    them, and a new client is served within it."""
    proc = subprocess.Popen([BIN, "serve", "--db", str(tmp_path / "s.db"), "--create",
                             "--listen", "127.0.0.1:0", "--max-connections", "5", "--timeout", "3",
                             "--header-timeout", "2"], stderr=subprocess.PIPE, text=True)
    port = int(re.search(r":(\d+)$", proc.stderr.readline().strip()).group(1))
    drain(proc)
    try:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        start = time.monotonic()
        served_after = None
        cut = set()
        while time.monotonic() - start < 8:
            for i, s in enumerate(socks):     # a byte a second, never idle
                if i in cut:
                    continue
                try:
                    s.sendall(b"a")
                except OSError:
                    cut.add(i)
            try:
                r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                if r.ok:
                    served_after = time.monotonic() - start
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        assert served_after is not None and served_after < 4, served_after
        for s in socks:
            s.close()
        # A client that sends its head at once is never cut, however long
        # its connection lives between requests within the idle timeout.
        with requests.Session() as s:
            for _ in range(3):
                assert s.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok
                time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
