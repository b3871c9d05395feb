"""A pdqmatch cluster: three `nats-server` processes forming a JetStream
cluster on 127.0.0.1, each with its own storage folder, and three
`pdqmatch serve --nats` nodes, every one with its own store fed from the
stream (tests/e2e/natsrig.py).  Everything is started here and stopped at
the end."""
import os
import re
import subprocess
import threading
import time

import pytest
import requests

from helpers import BIN, lookup_rows, random_hashes, run, small_tmpfs
from natsrig import Nats, Node, ready, wait_applied


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
    # b catches up by itself too (its consumer may need making anew after
    # the outage: allow it longer than a read's 5 s wait).
    wait_applied([b], r.json()["seq"], timeout=30)
    m = requests.get(b.url + "/v1/lookup", params={"hash": h[1]},
                     headers={"X-Pdqmatch-Min-Seq": str(r.json()["seq"])}, timeout=10).json()
    assert len(m["matches"]) == 1, m


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
    # Writes went on: most of the adds came after the kill (900 were left),
    # and a few at most were refused while the stream found a new leader.
    after = [cid for cid, at in acked if at > killed_at[0]]
    assert len(after) > 600 and len(refused) < 100, (len(acked), len(after), len(refused))
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


# The bulk load's size: a million hashes (the issue's), fewer under the
# sanitizers, where every node's apply runs several times slower.
BULK = int(os.environ.get("PDQM_TEST_CLUSTER_BULK", "1000000"))


def test_cluster_index_nats_bulk_list_reaches_every_node_exactly(cluster, tmp_path):
    import random
    nats, nodes = cluster
    rng = random.Random(8)
    ints = [rng.getrandbits(256) for _ in range(BULK)]
    lst = tmp_path / "big.txt"
    with open(lst, "w") as f:
        f.write("".join("%064x\n" % v for v in ints))
    p = run("index", "--nats", nats.urls, "--bank", "big", "--hash-list", lst, timeout=900)
    assert p.returncode == 0, p.stderr
    m = re.match(rf"published {BULK} items \({BULK} hashes\) in (\d+) log entries "
                 r"\([\d.]+ MB, up to entry (\d+)\)", p.stdout)
    assert m, p.stdout
    assert int(m.group(1)) > 1    # split to fit the servers' max_payload
    wait_applied(nodes, int(m.group(2)), timeout=900)
    for n in nodes:
        assert ready(n)["hashes"] == BULK
    # Exact against a brute force: stored hashes with bits flipped, and
    # random ones (far from all).
    def flipped(v, k, seed):
        r = random.Random(seed)
        for b in r.sample(range(256), k):
            v ^= 1 << b
        return v
    queries = [flipped(ints[i * 997], d, i) for i, d in enumerate([0, 3, 10, 20, 31, 32, 40])]
    queries += [rng.getrandbits(256) for _ in range(3)]
    want = sorted(("%064x" % q, "%064x" % v) for q in queries for v in ints
                  if (q ^ v).bit_count() <= 31)
    assert len(want) >= 5
    for n in nodes:
        out = run("lookup", "--db", n.db, "--bank", "big", "--max-distance", "31",
                  *("%064x" % q for q in queries))
        got = sorted((row[0], row[1]) for row in lookup_rows(out.stdout))
        assert got == want, n.db


def test_cluster_offline_banks_and_delete_publish_for_every_node(cluster):
    nats, nodes = cluster
    a, b, c = nodes
    p = run("banks", "create", "tools", "--threshold", "20", "--kind", "allow",
            "--nats", nats.urls)
    assert p.returncode == 0, p.stderr
    seq = int(re.match(r"published as log entry (\d+)$", p.stdout.strip()).group(1))
    # A bad change is refused before anything is published.
    bad = run("banks", "create", "bad name!", "--nats", nats.urls)
    assert bad.returncode == 1 and "bank" in bad.stderr and bad.stdout == ""
    h = random_hashes(2, 9)
    r = requests.post(a.url + "/v1/banks/tools/hashes",
                      json={"items": [{"hash": h[0], "content_id": "x"},
                                      {"hash": h[1], "content_id": "y"}]}, timeout=10)
    assert r.status_code == 200 and r.json()["seq"] == seq + 1, r.text
    p = run("delete", "--bank", "tools", "--content-id", "x", "--nats", nats.urls)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"published as log entry {seq + 2}"
    p = run("banks", "set", "tools", "--threshold", "5", "--nats", nats.urls)
    assert p.returncode == 0, p.stderr
    wait_applied(nodes, seq + 3)
    for n in nodes:
        bank = requests.get(n.url + "/v1/banks/tools", timeout=10).json()
        assert (bank["threshold"], bank["kind"], bank["contents"]) == (5, "allow", 1), bank
    p = run("banks", "delete", "tools", "--nats", nats.urls)
    assert p.returncode == 0, p.stderr
    wait_applied(nodes, seq + 4)
    for n in nodes:
        assert requests.get(n.url + "/v1/banks/tools", timeout=10).status_code == 404
    assert run("banks", "list", "--nats", nats.urls).returncode == 2


def test_cluster_import_nats_gives_every_node_the_export(cluster, tmp_path):
    """An export imported into the cluster: every node's export is the
    file itself, byte for byte (banks' thresholds, kinds and times, items'
    metadata, digests and times)."""
    from helpers import SAMPLES
    nats, nodes = cluster
    src = tmp_path / "src.db"
    assert run("index", "--db", src, "--bank", "photos", SAMPLES).returncode == 0
    hs = random_hashes(30, 10)
    lst = tmp_path / "l.csv"
    lst.write_text("hash,content_id,metadata,bank\n" +
                   "".join(f'{h},m{i},"{{""i"": {i}}}",list{i % 2}\n' for i, h in enumerate(hs)))
    assert run("index", "--db", src, "--hash-list", lst).returncode == 0
    assert run("banks", "set", "list1", "--threshold", "12", "--kind", "allow",
               "--db", src).returncode == 0
    dump = tmp_path / "dump.jsonl"
    dump.write_text(export(src))
    p = run("import", "--nats", nats.urls, dump)
    assert p.returncode == 0, p.stderr
    # The 5 samples and the 30 list items; photos, list0, list1.
    assert p.stdout == "published 35 items (35 hashes) and 3 banks, refused 0 lines\n"
    # An add the nodes skip (list0 has m0): once applied, so is the import.
    r = requests.post(nodes[1].url + "/v1/banks/list0/hashes",
                      json={"items": [{"hash": hs[0], "content_id": "m0"}]}, timeout=10)
    wait_applied(nodes, r.json()["seq"])
    for n in nodes:
        assert export(n.db) == dump.read_text()
    # Importing it again changes nothing anywhere.
    assert run("import", "--nats", nats.urls, dump).returncode == 0
    r = requests.post(nodes[2].url + "/v1/banks/list0/hashes",
                      json={"items": [{"hash": hs[0], "content_id": "m0"}]}, timeout=10)
    wait_applied(nodes, r.json()["seq"])
    for n in nodes:
        assert export(n.db) == dump.read_text()


def test_cluster_node_reading_through_a_mirror(cluster, tmp_path):
    """A node of another region reads the log through a mirror of the
    stream (as a JetStream mirror in its own region would hold it): its
    writes still go to the stream, are answered with what applying did,
    and it ends identical to the others."""
    nats, nodes = cluster
    a = nodes[0]
    d = Node(tmp_path / "d.db", nats.urls, "--mirror", "PDQMATCH_EU")
    try:
        r = requests.post(d.url + "/v1/banks", json={"name": "m"}, timeout=10)
        assert r.status_code == 201, r.text
        hs = random_hashes(40, 11)
        for i, h in enumerate(hs):
            node = (a, d)[i % 2]
            r = requests.post(node.url + "/v1/banks/m/hashes",
                              json={"items": [{"hash": h, "content_id": f"r{i}"}]}, timeout=10)
            assert r.status_code == 200 and r.json()["added"] == 1, r.text
        # The same id again through the mirror's node: skipped, as anywhere.
        r = requests.post(d.url + "/v1/banks/m/hashes",
                          json={"items": [{"hash": hs[0], "content_id": "r0"}]}, timeout=10)
        assert r.status_code == 200 and r.json()["added"] == 0, r.text
        seq = r.json()["seq"]
        # Sequence numbers are the stream's on every node.
        m = requests.get(a.url + "/v1/lookup", params={"hash": hs[1]},
                         headers={"X-Pdqmatch-Min-Seq": str(seq)}, timeout=10).json()
        assert [x["content_id"] for x in m["matches"]] == ["r1"]
        wait_applied(nodes + [d], seq)
        assert ready(d)["status"] == "ready"
        exports = [export(n.db) for n in nodes + [d]]
        assert exports[0] == exports[1] == exports[2] == exports[3]
    finally:
        d.stop()


def test_cluster_mirror_on_a_single_nats_server(tmp_path):
    """One NATS server, the stream at one replica, a node reading through a
    mirror: entries must reach the mirror (a header naming the stream they
    were published to would make the mirror refuse every one)."""
    nats = Nats(tmp_path, n=1)
    nodes = []
    try:
        nodes.append(Node(tmp_path / "a.db", nats.urls))
        nodes.append(Node(tmp_path / "m.db", nats.urls, "--mirror", "PDQMATCH_M"))
        r = requests.post(nodes[1].url + "/v1/banks", json={"name": "one"}, timeout=10)
        assert r.status_code == 201, r.text
        h = random_hashes(1, 12)[0]
        r = requests.post(nodes[0].url + "/v1/banks/one/hashes",
                          json={"items": [{"hash": h, "content_id": "x"}]}, timeout=10)
        assert r.status_code == 200, r.text
        m = requests.get(nodes[1].url + "/v1/lookup", params={"hash": h},
                         headers={"X-Pdqmatch-Min-Seq": str(r.json()["seq"])}, timeout=10)
        assert [x["content_id"] for x in m.json()["matches"]] == ["x"], m.text
    finally:
        for n in nodes:
            n.stop()
        nats.stop()


def test_cluster_over_tls_with_client_certificates(tmp_path):
    """A NATS server that speaks only TLS and verifies its clients: a node
    and the tools connect with --nats-ca, --nats-cert and --nats-key; without
    a client certificate they are refused, saying so."""
    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    ca, ca_key = tmp_path / "ca.pem", tmp_path / "ca.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test ca",
            "-keyout", ca_key, "-out", ca)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"),
                      ("client", "extendedKeyUsage=clientAuth")):
        ext_file = tmp_path / f"{name}.ext"
        ext_file.write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", tmp_path / f"{name}.key", "-out", tmp_path / f"{name}.csr")
        openssl("x509", "-req", "-in", tmp_path / f"{name}.csr", "-CA", ca, "-CAkey", ca_key,
                "-CAcreateserial", "-days", "2", "-extfile", ext_file,
                "-out", tmp_path / f"{name}.pem")
    nats = Nats(tmp_path, n=1, scheme="tls", conf=f"""
tls {{ cert_file: "{tmp_path}/server.pem", key_file: "{tmp_path}/server.key",
       ca_file: "{ca}", verify: true }}
""")
    tls = ["--nats-ca", ca, "--nats-cert", tmp_path / "client.pem",
           "--nats-key", tmp_path / "client.key"]
    node = None
    try:
        refused = run("banks", "create", "t", "--nats", nats.urls, "--nats-ca", ca, timeout=60)
        assert refused.returncode == 2 and "cannot connect to NATS" in refused.stderr, \
            refused.stderr
        p = run("banks", "create", "t", "--nats", nats.urls, *tls, timeout=60)
        assert p.returncode == 0, p.stderr
        node = Node(tmp_path / "a.db", nats.urls, *map(str, tls))
        wait_applied([node], 1)
        assert requests.get(node.url + "/v1/banks/t", timeout=10).status_code == 200
    finally:
        if node:
            node.stop()
        nats.stop()



def test_cluster_node_on_a_full_disk_falls_out_and_catches_up(tmp_path):
    """One node's disk fills while the others go on: its applier keeps the
    failed batch and tries again, it reports itself not ready and not
    writable, a write through it is refused with 507 and publishes
    nothing, and once space is freed it catches up to the others' export.
    Needs root (a small tmpfs), as test_full_disk does."""
    with small_tmpfs(tmp_path / "disk", "96m") as disk:
        full_disk_node(tmp_path, disk)


def full_disk_node(tmp_path, disk):
    nats = Nats(tmp_path)
    nodes = []
    try:
        a = Node(tmp_path / "a.db", nats.urls)
        nodes.append(a)
        c = Node(disk / "c.db", nats.urls)
        nodes.append(c)
        assert requests.post(a.url + "/v1/banks", json={"name": "k"}, timeout=10).status_code == 201
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        with open(disk / "ballast", "wb") as f:
            f.write(b"\0" * (free - 1_500_000))
        hashes = iter(random_hashes(400_000, 13))
        acked, last, n = [], 0, 0
        # Add through a until c has stayed behind past --max-lag (1 s).
        while n < 1000:
            items = [{"hash": next(hashes), "content_id": f"f{n}-{i}"} for i in range(200)]
            r = requests.post(a.url + "/v1/banks/k/hashes", json={"items": items}, timeout=30)
            assert r.status_code == 200, r.text
            acked += items
            last = r.json()["seq"]
            n += 1
            r = requests.get(c.url + "/readyz", timeout=10)
            if r.status_code == 503 and r.json()["writable"] is False:
                break
        assert r.status_code == 503 and r.json()["status"] == "lagging", r.text
        assert r.json()["writable"] is False, (r.text, requests.get(c.url + "/metrics").text)
        # A write through the full node: refused, and nothing published.
        before = ready(a)["last_seq"]
        r = requests.post(c.url + "/v1/banks/k/hashes",
                          json={"items": [{"hash": next(hashes), "content_id": "via-c"}]},
                          timeout=30)
        assert r.status_code == 507, r.text
        time.sleep(1)
        assert ready(a)["last_seq"] == before
        # Lookups go on from what it holds.
        m = requests.get(c.url + "/v1/lookup", params={"hash": acked[0]["hash"]}, timeout=10)
        assert m.json()["matches"][0]["content_id"] == "f0-0"
        (disk / "ballast").unlink()
        wait_applied(nodes, last, timeout=60)
        assert ready(c)["writable"] is True, ready(c)
        exports = [export(x.db) for x in nodes]
        assert exports[0] == exports[1]
        assert '"content_id":"via-c"' not in exports[0]
        for x in nodes:
            assert run("verify", "--db", x.db).returncode == 0
    finally:
        for x in nodes:
            x.stop()
        nats.stop()


def test_cluster_options_refused_with_their_reason(tmp_path):
    p = run("snapshot", "--db", tmp_path / "x.db", "--purge", tmp_path / "s.db")
    assert p.returncode == 2
    assert p.stderr.startswith("pdqmatch: --purge needs --nats\n"), p.stderr
    p = run("delete", "--bank", "b", "--content-id", "c", "--nats", "nats://127.0.0.1:1",
            "--nats-cert", tmp_path / "c.pem")
    assert p.returncode == 2
    assert p.stderr == "pdqmatch: a NATS client certificate and its key go together\n", p.stderr
    p = run("serve", "--db", tmp_path / "y.db", "--create", "--nats", "nats://127.0.0.1:1",
            "--mirror", "PDQMATCH")
    assert p.returncode == 2
    assert p.stderr == "pdqmatch: the mirror must be another stream\n", p.stderr
    p = run("banks", "list", "--nats", "nats://127.0.0.1:1")
    assert p.returncode == 2 and "a list is a node's" in p.stderr, p.stderr


def test_cluster_hma_writes_reach_every_node(tmp_path):
    """HMA's writes on a node of a cluster are log entries like any other:
    an item added through one node's HMA routes has the same id on every
    node, and its changes (disabled, a bank renamed, deleted) reach them
    all.  These entries use the log's version 2."""
    nats = Nats(tmp_path)
    a = b = None
    try:
        a = Node(tmp_path / "a.db", nats.urls, "--hma")
        b = Node(tmp_path / "b.db", nats.urls, "--hma")
        h = random_hashes(1, 7)[0]
        lookup = {"signal_type": "pdq", "signal": h}

        def on_b(want, path="/m/lookup"):
            end = time.monotonic() + 10
            while time.monotonic() < end:
                got = requests.get(b.url + path, params=lookup, timeout=10).json()
                if got == want:
                    return
                time.sleep(0.05)
            raise AssertionError(f"{path} on b: {got}, not {want}")

        r = requests.post(a.url + "/c/banks", json={"name": "SHARED", "enabled_ratio": 0.7},
                          timeout=10)
        assert r.json() == {"name": "SHARED", "matching_enabled_ratio": 0.7}
        requests.put(a.url + "/c/bank/SHARED", json={"enabled_ratio": 1}, timeout=10)
        r = requests.post(a.url + "/c/bank/SHARED/signal", json={"pdq": h, "note": "n"},
                          timeout=10)
        assert r.status_code == 200, r.text
        cid = r.json()["id"]
        on_b({"SHARED": [{"bank_content_id": cid, "distance": "0"}]})
        r = requests.put(b.url + f"/c/bank/SHARED/content/{cid}", json={"disable_until_ts": 0},
                         timeout=10)
        assert r.status_code == 200 and r.json()["disable_until_ts"] == 0
        on_b({})
        on_b({"matches": [cid]}, "/m/raw_lookup")
        requests.put(a.url + f"/c/bank/SHARED/content/{cid}", json={"disable_until_ts": 1},
                     timeout=10)
        requests.put(a.url + "/c/bank/SHARED", json={"name": "RENAMED"}, timeout=10)
        on_b({"RENAMED": [{"bank_content_id": cid, "distance": "0"}]})
        r = requests.delete(b.url + f"/c/bank/RENAMED/content/{cid}", timeout=10)
        assert r.json() == {"deleted": 1}
        end = time.monotonic() + 10
        while requests.get(a.url + "/m/raw_lookup", params=lookup, timeout=10).json() != \
                {"matches": []}:
            assert time.monotonic() < end
            time.sleep(0.05)
    finally:
        for n in (a, b):
            if n:
                n.stop()
        nats.stop()
    assert export(tmp_path / "a.db") == export(tmp_path / "b.db")
    for db in ("a.db", "b.db"):
        assert run("verify", "--db", tmp_path / db).returncode == 0


def test_cluster_exchange_fetched_by_one_node_reaches_every_node(tmp_path):
    """An exchange added with --nats is every node's; with --fetch-interval
    every node tries to fetch it, one at a time (the lease is in the log),
    and its pages (records and checkpoint, one entry each) reach all."""
    from exchange_standin import start as start_standin
    from test_exchanges import add, control, creds_file, expected, items, load, payload, status

    standin = start_standin()
    base = "http://127.0.0.1:%d" % standin.server_address[1]
    nats = Nats(tmp_path)
    nodes = []
    try:
        load(base, "tcap", 0)
        control(base, "delay", api="tcap", seconds=0.2)
        creds = creds_file(tmp_path, "tcap")
        r = run("exchange", "add", "T", "--nats", nats.urls, "--type", "tcap", "--bank", "TCAP",
                "--credentials", creds, "--base-url", base + "/tcap")
        assert r.returncode == 0, r.stderr
        for name in "ab":
            nodes.append(Node(tmp_path / f"{name}.db", nats.urls, "--fetch-interval", "1"))
        want = expected("tcap", payload("tcap")["phases"][:1])
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if all({k: v[:2] for k, v in items(n.db, "TCAP").items()} == want for n in nodes):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the exchange's items did not reach every node")
        # Never two fetches at once: the stand-in saw each page once a fetch,
        # and no two fetches' requests interleave.
        reqs = requests.get(base + "/_control/requests?api=tcap", timeout=10).json()
        assert reqs and all(r["auth"].startswith("Bearer tcap-token-") for r in reqs)
        seen_tokens = [r["auth"] for r in reqs]
        runs = [t for i, t in enumerate(seen_tokens) if i == 0 or seen_tokens[i - 1] != t]
        assert len(runs) == len(set(runs)), seen_tokens   # each login's pages together
        for n in nodes:
            s = requests.get(n.url + "/v1/exchanges/T", timeout=10).json()
            assert s["last_fetch"] is None or s["last_fetch"]["ok"], s
    finally:
        for n in nodes:
            n.stop()
        nats.stop()
        standin.shutdown()
        standin.server_close()
    assert export(tmp_path / "a.db") == export(tmp_path / "b.db")
    for db in ("a.db", "b.db"):
        assert run("verify", "--db", tmp_path / db).returncode == 0
