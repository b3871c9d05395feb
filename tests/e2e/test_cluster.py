"""A pdqmatch cluster: three `nats-server` processes forming a JetStream
cluster on 127.0.0.1, each with its own storage folder, and three
`pdqmatch serve --nats` nodes, every one with its own store fed from the
stream.  Everything is started here and stopped at the end."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from helpers import BIN, drain, random_hashes, run

NATS = shutil.which("nats-server") or "/usr/bin/nats-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nats:
    """A 3-server JetStream cluster on loopback."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.client = [free_port() for _ in range(3)]
        self.route = [free_port() for _ in range(3)]
        self.procs = [None] * 3
        for i in range(3):
            self.start(i)
        self.urls = ",".join(f"nats://127.0.0.1:{p}" for p in self.client)
        self.wait_ready()

    def start(self, i):
        conf = self.tmp / f"nats{i}.conf"
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.route)
        conf.write_text(f"""
server_name: n{i}
listen: 127.0.0.1:{self.client[i]}
max_payload: 8MB
jetstream {{ store_dir: "{self.tmp}/js{i}" }}
cluster {{ name: pdqm, listen: 127.0.0.1:{self.route[i]}, routes: [ {routes} ] }}
""")
        self.procs[i] = subprocess.Popen([NATS, "-c", str(conf)],
                                         stdout=subprocess.DEVNULL,
                                         stderr=open(self.tmp / f"nats{i}.log", "a"))

    def wait_ready(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            logs = "".join((self.tmp / f"nats{i}.log").read_text() for i in range(3)
                           if (self.tmp / f"nats{i}.log").exists())
            if "JetStream cluster new metadata leader" in logs:
                return
            time.sleep(0.1)
        raise RuntimeError("the NATS cluster did not form")

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.terminate()
        for p in self.procs:
            if p:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Node:
    def __init__(self, db, urls, *extra):
        self.db, self.urls, self.extra = db, urls, extra
        self.start()

    def start(self):
        self.proc = subprocess.Popen([BIN, "serve", "--db", str(self.db), "--create",
                                      "--listen", "127.0.0.1:0", "--nats", self.urls,
                                      "--timeout", "5", *self.extra],
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        drain(self.proc)
        m = re.search(r"listen=127\.0\.0\.1:(\d+)$", line.strip())
        assert m, line
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=60) == 0
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()


@pytest.fixture
def cluster(tmp_path):
    nats = Nats(tmp_path)
    nodes = []
    try:
        for name in "abc":
            nodes.append(Node(tmp_path / f"{name}.db", nats.urls))
        yield nats, nodes
    finally:
        for n in nodes:
            n.stop()
        nats.stop()


def ready(node):
    return requests.get(node.url + "/readyz", timeout=10).json()


def wait_applied(nodes, seq, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(ready(n)["applied_seq"] >= seq for n in nodes):
            return
        time.sleep(0.05)
    raise AssertionError(f"not every node applied {seq}: {[ready(n) for n in nodes]}")


def export(db):
    out = run("export", "--db", db, "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cluster_add_on_a_found_on_b_and_c(cluster):
    _, (a, b, c) = cluster
    r = requests.post(a.url + "/v1/banks", json={"name": "known"}, timeout=10)
    assert r.status_code == 201, r.text
    h = random_hashes(1, 1)[0]
    r = requests.post(b.url + "/v1/banks/known/hashes",
                      json={"items": [{"hash": h, "content_id": "one", "metadata": {"k": 1}}]},
                      timeout=10)
    assert r.status_code == 200, r.text
    seq = r.json()["seq"]
    assert r.json()["added"] == 1
    # Read your writes on any node: the header waits until it is applied.
    for n in (a, c):
        m = requests.get(n.url + "/v1/lookup", params={"hash": h},
                         headers={"X-Pdqmatch-Min-Seq": str(seq)}, timeout=10).json()
        assert [x["content_id"] for x in m["matches"]] == ["one"]
    # And without it, within 5 s at most.
    wait_applied([a, b, c], seq, timeout=5)
    assert ready(c)["status"] == "ready"
    metrics = requests.get(c.url + "/metrics", timeout=10).text
    assert f"pdqmatch_cluster_applied_seq {seq}" in metrics


def test_cluster_bad_write_publishes_nothing(cluster):
    _, (a, b, _) = cluster
    r = requests.post(a.url + "/v1/banks", json={"name": "k"}, timeout=10)
    assert r.status_code == 201
    before = r.json()["seq"]
    r = requests.post(a.url + "/v1/banks", json={"name": "bad name!"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(a.url + "/v1/banks/k/hashes",
                      json={"items": [{"hash": random_hashes(1, 2)[0], "quality": 500}]},
                      timeout=10)
    assert r.status_code == 400
    # A refused op still goes through (409 on a bank that exists) but a
    # malformed one never reaches the log.
    r = requests.post(a.url + "/v1/banks", json={"name": "k"}, timeout=10)
    assert r.status_code == 409, r.text
    wait_applied([b], before + 1)
    time.sleep(1)   # the stream's last seq, as b last asked it
    assert ready(b)["last_seq"] == before + 1


def test_cluster_same_content_through_two_nodes_at_once(cluster):
    _, nodes = cluster
    a, b, c = nodes
    assert requests.post(a.url + "/v1/banks", json={"name": "k"}, timeout=10).status_code == 201
    hashes = random_hashes(40, 3)
    replies = {}

    def add(node, i, h):
        r = requests.post(node.url + "/v1/banks/k/hashes",
                          json={"items": [{"hash": h, "content_id": f"same-{i}"}]}, timeout=20)
        replies.setdefault(i, []).append(r.json())

    threads = []
    for i in range(20):
        threads.append(threading.Thread(target=add, args=(a, i, hashes[2 * i])))
        threads.append(threading.Thread(target=add, args=(b, i, hashes[2 * i + 1])))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    last = 0
    for i, rs in replies.items():
        assert len(rs) == 2
        assert sorted(r["added"] for r in rs) == [0, 1], rs   # exactly one says added
        last = max(last, *(r["seq"] for r in rs))
    wait_applied(nodes, last)
    exports = [export(n.db) for n in nodes]
    assert exports[0] == exports[1] == exports[2]
    assert exports[0].count('"content_id":"same-') == 20


def test_cluster_node_killed_during_adds_catches_up(cluster):
    _, nodes = cluster
    a, b, c = nodes
    assert requests.post(a.url + "/v1/banks", json={"name": "k"}, timeout=10).status_code == 201
    hashes = random_hashes(300, 4)
    acked = []
    for i, h in enumerate(hashes):
        if i == 100:
            c.kill()
        if i == 200:
            c.start()
        node = (a, b)[i % 2]
        r = requests.post(node.url + "/v1/banks/k/hashes",
                          json={"items": [{"hash": h, "content_id": f"c{i}"}]}, timeout=20)
        assert r.status_code == 200, r.text
        acked.append(r.json()["seq"])
    wait_applied(nodes, max(acked), timeout=30)
    exports = [export(n.db) for n in nodes]
    assert exports[0] == exports[1] == exports[2]
    assert all(f'"content_id":"c{i}"' in exports[0] for i in range(300))
    for n in nodes:
        assert run("verify", "--db", n.db).returncode == 0


def test_cluster_majority_of_nats_down(cluster):
    nats, (a, b, _) = cluster
    assert requests.post(a.url + "/v1/banks", json={"name": "k"}, timeout=10).status_code == 201
    h = random_hashes(2, 5)
    r = requests.post(a.url + "/v1/banks/k/hashes", json={"items": [{"hash": h[0]}]}, timeout=10)
    assert r.status_code == 200, r.text
    wait_applied([a, b], r.json()["seq"])
    nats.kill(1)
    nats.kill(2)
    t0 = time.monotonic()
    r = requests.post(a.url + "/v1/banks/k/hashes", json={"items": [{"hash": h[1]}]}, timeout=30)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    assert time.monotonic() - t0 < 10
    # Lookups go on from the local store.
    m = requests.get(b.url + "/v1/lookup", params={"hash": h[0]}, timeout=10).json()
    assert len(m["matches"]) == 1
    nats.start(1)
    nats.start(2)
    end = time.monotonic() + 60
    while True:
        r = requests.post(a.url + "/v1/banks/k/hashes", json={"items": [{"hash": h[1]}]},
                          timeout=30)
        if r.status_code == 200 or time.monotonic() > end:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    m = requests.get(b.url + "/v1/lookup", params={"hash": h[1]},
                     headers={"X-Pdqmatch-Min-Seq": str(r.json()["seq"])}, timeout=10).json()
    assert len(m["matches"]) == 1


def test_cluster_nats_server_killed_during_adds_through_all_nodes(cluster):
    """kill -9 of one NATS server in the middle of a stream of adds through
    all three nodes: writes go on, every acknowledged add is on every node,
    and the nodes stay identical (no add half there)."""
    nats, nodes = cluster
    assert requests.post(nodes[0].url + "/v1/banks", json={"name": "k"},
                         timeout=10).status_code == 201
    hashes = random_hashes(3 * 400, 6)
    acked, refused = [], []
    killed_at = []
    lock = threading.Lock()

    def adds(k, node):
        for i in range(400):
            cid = f"n{k}-{i}"
            h = hashes[k * 400 + i]
            items = [{"hash": h, "content_id": cid, "metadata": {"i": i}},
                     {"hash": h, "content_id": cid + "-twin"}]
            try:
                r = requests.post(node.url + "/v1/banks/k/hashes", json={"items": items},
                                  timeout=30)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                (acked if ok else refused).append((cid, time.monotonic()))

    threads = [threading.Thread(target=adds, args=(k, n)) for k, n in enumerate(nodes)]
    for t in threads:
        t.start()
    while True:
        with lock:
            if len(acked) >= 300:
                break
        time.sleep(0.01)
    nats.kill(0)
    killed_at.append(time.monotonic())
    for t in threads:
        t.join()
    after = [cid for cid, at in acked if at > killed_at[0] + 5]
    assert len(after) > 100, (len(acked), len(refused))   # writes went on
    seq = max(ready(n)["last_seq"] for n in nodes)
    wait_applied(nodes, seq, timeout=60)
    exports = [export(n.db) for n in nodes]
    assert exports[0] == exports[1] == exports[2]
    held = set(re.findall(r'"content_id":"(n\d-\d+(?:-twin)?)"', exports[0]))
    for cid, _ in acked:
        assert cid in held and cid + "-twin" in held, cid
    # An item and its twin came in one write: both there or neither.
    for cid, _ in refused:
        assert (cid in held) == (cid + "-twin" in held), cid
    for n in nodes:
        assert run("verify", "--db", n.db).returncode == 0


def test_cluster_fourth_node_joins_from_a_snapshot(cluster, tmp_path):
    nats, nodes = cluster
    a, b, c = nodes
    assert requests.post(a.url + "/v1/banks", json={"name": "k"}, timeout=10).status_code == 201
    hashes = random_hashes(200, 7)
    for i in range(100):
        r = requests.post(nodes[i % 3].url + "/v1/banks/k/hashes",
                          json={"items": [{"hash": hashes[i], "content_id": f"s{i}"}]},
                          timeout=20)
        assert r.status_code == 200, r.text
    # A snapshot of a serving node, then the stream purged up to it.
    snap = tmp_path / "snap.db"
    out = run("snapshot", "--db", a.db, "--nats", nats.urls, "--purge", snap)
    assert out.returncode == 0, out.stderr
    m = re.match(r"snapshot at log entry (\d+): ", out.stdout)
    assert m, out.stdout
    at = int(m.group(1))
    assert at >= 101
    assert f"purged the stream's entries up to {at}" in out.stdout
    for i in range(100, 200):
        r = requests.post(nodes[i % 3].url + "/v1/banks/k/hashes",
                          json={"items": [{"hash": hashes[i], "content_id": f"s{i}"}]},
                          timeout=20)
        assert r.status_code == 200, r.text
    r = requests.delete(b.url + "/v1/banks/k/content/s3", timeout=10)
    assert r.status_code == 200, r.text
    last = r.json()["seq"]
    # A node with an empty store cannot follow a purged stream: it says so.
    empty = subprocess.run([BIN, "serve", "--db", str(tmp_path / "e.db"), "--create",
                            "--listen", "127.0.0.1:0", "--nats", nats.urls],
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2
    assert "purged" in empty.stderr and "snapshot" in empty.stderr, empty.stderr
    d = Node(snap, nats.urls)
    try:
        wait_applied(nodes + [d], last, timeout=30)
        assert ready(d)["status"] == "ready"
        exports = [export(n.db) for n in nodes + [d]]
        assert exports[0] == exports[1] == exports[2] == exports[3]
        assert '"content_id":"s199"' in exports[3] and '"content_id":"s3"' not in exports[3]
        assert run("verify", "--db", snap).returncode == 0
    finally:
        d.stop()
