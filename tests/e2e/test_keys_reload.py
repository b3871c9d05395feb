"""pdqmatch serve reloads its key file on SIGHUP (issue 13, point 4): new
keys work and removed ones stop at once, no connection is dropped, a
request in flight finishes, a key kept keeps its rate-limit state, and a
file that does not load leaves the keys as they were."""
import os
import re
import signal
import socket
import subprocess
import time

import requests

from helpers import BIN, drain

OLD, KEPT, NEW = "old-key-0123456789abcdef", "kept-key-0123456789abcd", "new-key-0123456789abcdef"
SLOW = "slow-key-0123456789abcdef"


def http(sock, path, key):
    """One keep-alive GET on sock: (status, body)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
                 .encode())
    return read_reply(sock)


def read_reply(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return int(head.split()[1]), body[:length]


def wait_for(proc, text, count, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if "".join(proc.log_lines).count(text) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"no '{text}' in the log:\n" + "".join(proc.log_lines))


def test_keys_reload_on_sighup_without_dropping_connections(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"{OLD} read old\n{KEPT} admin kept\n{SLOW} read slow rate=0.5 burst=2\n")
    os.chmod(keys, 0o600)
    proc = subprocess.Popen([BIN, "serve", "--db", str(tmp_path / "s.db"), "--create",
                             "--listen", "127.0.0.1:0", "--api-keys", str(keys)],
                            stderr=subprocess.PIPE, text=True)
    port = int(re.search(r":(\d+)$", proc.stderr.readline().strip()).group(1))
    drain(proc)
    url = f"http://127.0.0.1:{port}"
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert http(conn, "/v1/stats", OLD)[0] == 200
        # A request in flight across the reload: its head is in (checked
        # under the old keys), half of its body not yet.
        body = b'{"hashes": ["' + b"0" * 64 + b'"]}'
        inflight = socket.create_connection(("127.0.0.1", port), timeout=10)
        inflight.sendall(b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                         b"\r\nAuthorization: Bearer " + OLD.encode() + b"\r\nContent-Length: " +
                         str(len(body)).encode() + b"\r\n\r\n" + body[:5])
        slow = requests.Session()
        codes = [slow.get(url + "/v1/stats", headers={"Authorization": "Bearer " + SLOW},
                          timeout=10).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        time.sleep(0.2)

        keys.write_text(f"{KEPT} admin kept\n{NEW} write new\n{SLOW} read slow rate=0.5 burst=2\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(proc, "reloaded the keys", 1)

        # The same connection is served, under the new keys (a refusal,
        # answered before any body could come, closes its connection: on
        # another one).
        assert http(conn, "/v1/stats", NEW)[0] == 200
        assert http(conn, "/v1/stats", KEPT)[0] == 200
        assert requests.get(url + "/v1/stats", headers={"Authorization": "Bearer " + OLD},
                            timeout=10).status_code == 401
        # The request in flight finishes.
        inflight.sendall(body[5:])
        status, reply = read_reply(inflight)
        assert status == 200, reply
        # The kept key's bucket was not refilled by the reload, and its
        # count of refusals goes on.
        assert slow.get(url + "/v1/stats", headers={"Authorization": "Bearer " + SLOW},
                        timeout=10).status_code == 429
        metrics = requests.get(url + "/metrics", headers={"Authorization": "Bearer " + KEPT},
                               timeout=10).text
        assert 'pdqmatch_rate_limited_total{key="slow"} 2\n' in metrics, metrics

        # A file that does not load: an error in the log, the keys stay.
        keys.write_text(f"{NEW} write\nshort read\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(proc, "cannot reload the keys", 1)
        assert http(conn, "/v1/stats", NEW)[0] == 200
        assert http(conn, "/v1/stats", KEPT)[0] == 200
        # A file open to others is taken, with a warning.
        keys.write_text(f"{NEW} write new\n")
        os.chmod(keys, 0o644)
        proc.send_signal(signal.SIGHUP)
        wait_for(proc, "reloaded the keys", 2)
        wait_for(proc, "the key file is open to group or others", 1)
        assert http(conn, "/v1/stats", NEW)[0] == 200
        assert requests.get(url + "/v1/stats", headers={"Authorization": "Bearer " + KEPT},
                            timeout=10).status_code == 401
        conn.close()
        inflight.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
