"""pdqmatch serve --api-keys: 401 without a key, 403 without the role,
and every route class with every role."""
import re
import subprocess

import pytest
import requests

from helpers import BIN, SAMPLES, run, drain

KEYS = {"read": "r" * 20, "write": "w-key-0123456789abc", "admin": "A" * 40}
BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


@pytest.fixture
def keyed(tmp_path):
    db = tmp_path / "s.db"
    assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    keyfile = tmp_path / "keys"
    keyfile.write_text("# who may do what\n\n" +
                       "".join(f"{k} {role} {role}-team\n" for role, k in KEYS.items()))
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--create", "--listen", "127.0.0.1:0",
                             "--api-keys", str(keyfile)], stderr=subprocess.PIPE, text=True)
    m = re.search(r"listen=127\.0\.0\.1:(\d+)$", proc.stderr.readline().strip())
    drain(proc)
    assert m
    yield f"http://127.0.0.1:{m.group(1)}"
    proc.kill()
    proc.wait()


# (method, path, json body, least role)
CALLS = [
    ("GET", "/v1/lookup?hash=" + BRIDGE, None, "read"),
    ("POST", "/v1/lookup", {"hashes": [BRIDGE]}, "read"),
    ("GET", "/v1/stats", None, "read"),
    ("GET", "/v1/banks/photos/content/bridge.jpg", None, "read"),
    ("POST", "/v1/banks/photos/hashes",
     {"items": [{"hash": BRIDGE, "content_id": "new"}]}, "write"),
    ("DELETE", "/v1/banks/photos/content/street.jpg", None, "write"),
    ("POST", "/v1/banks", {"name": "b2"}, "admin"),
    ("PATCH", "/v1/banks/photos", {"threshold": 20}, "admin"),
]
RANK = {"read": 1, "write": 2, "admin": 3}


@pytest.mark.parametrize("method,path,body,least", CALLS)
def test_roles(keyed, method, path, body, least):
    r = requests.request(method, keyed + path, json=body, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    r = requests.request(method, keyed + path, json=body, timeout=10,
                         headers={"Authorization": "Bearer " + "x" * 20})
    assert (r.status_code, r.json()["error"]["message"]) == (401, "unknown API key")
    r = requests.request(method, keyed + path, json=body, timeout=10,
                         headers={"Authorization": "Bearer " + KEYS["admin"][:-1]})
    assert r.status_code == 401
    for role in ("read", "write", "admin"):
        r = requests.request(method, keyed + path, json=body, timeout=10,
                             headers={"Authorization": "Bearer " + KEYS[role]})
        if RANK[role] < RANK[least]:
            assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), role
        else:
            assert r.status_code in (200, 201), (role, r.text)
            break   # the call changed something; the higher roles are proven by rank


def test_health_needs_no_key(keyed):
    assert requests.get(keyed + "/healthz", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize("text,message", [
    ("short read\n", "keys:1: a key is 16 to 128 printable characters"),
    ("k" * 20 + " root\n", "keys:1: the role is read, write or admin"),
    ("# none\n\n", "the key file {keys} holds no key"),
    ("k" * 20 + " read\n" + "k" * 20 + " admin\n", "keys:2: the key is repeated"),
    ("k" * 20 + " read a b\n", "keys:1: a line is KEY ROLE [NAME] [rate=R] [burst=B], a name at "
     "most 64 bytes, R (requests a second) and B (more than 0, B with R) numbers up to 1000000"),
])
def test_bad_key_files(tmp_path, text, message):
    keys = tmp_path / "keys"
    keys.write_text(text)
    p = run("serve", "--db", tmp_path / "s.db", "--create", "--listen", "127.0.0.1:0", "--api-keys", keys,
            timeout=30)
    assert p.returncode == 2
    assert p.stderr == "pdqmatch: " + message.replace("keys:", f"{keys}:").format(keys=keys) + "\n"


def test_public_address_allowed_with_keys(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k" * 20 + " read\n")
    proc = subprocess.Popen([BIN, "serve", "--db", str(tmp_path / "s.db"), "--create", "--listen",
                             "0.0.0.0:0", "--api-keys", str(keys)],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        drain(proc)
        m = re.search(r"listen=0\.0\.0\.0:(\d+)$", line.strip())
        assert m, line
        r = requests.get(f"http://127.0.0.1:{m.group(1)}/v1/stats", timeout=10,
                         headers={"Authorization": "Bearer " + "k" * 20})
        assert r.json()["banks"] == 0
    finally:
        proc.kill()
        proc.wait()
