"""Requests that wait for the store's writer must not stall lookups.

Another process holds the store's write lock (as `pdqmatch index`, or a
pass in steps of a large store, does for a moment at a time; here through
LMDB's own C library, for as long as the test needs).  As many adds as the
machine has cores wait for it, each holding a request thread; a lookup sent
then is answered while they wait (with one request thread a core, the
default before, it waited with them), and once the lock is let go every
add is taken."""
import ctypes
import ctypes.util
import json
import os
import threading
import urllib.request

from helpers import random_hashes

MDB_NOSUBDIR = 0x4000


class Writer:
    """A write transaction on the store, held from begin() to end()."""

    def __init__(self, path):
        name = ctypes.util.find_library("lmdb") or "liblmdb.so.0"
        self.lib = ctypes.CDLL(name)
        self.env, self.txn = ctypes.c_void_p(), ctypes.c_void_p()
        assert self.lib.mdb_env_create(ctypes.byref(self.env)) == 0
        self.lib.mdb_env_set_maxdbs(self.env, 16)
        assert self.lib.mdb_env_open(self.env, str(path).encode(), MDB_NOSUBDIR, 0o644) == 0

    def begin(self):
        assert self.lib.mdb_txn_begin(self.env, None, 0, ctypes.byref(self.txn)) == 0

    def end(self):
        self.lib.mdb_txn_abort(self.txn)
        self.lib.mdb_env_close(self.env)


def call(url, path, body=None, timeout=60):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def test_lookups_go_on_while_adds_wait_for_the_writer(server):
    url, proc, db = server
    writer = Writer(db)
    writer.begin()
    added, errors = [], []

    def add(i):
        try:
            body = {"items": [{"hash": random_hashes(1, 70 + i)[0], "content_id": f"w{i}"}]}
            added.append(call(url, "/v1/banks/photos/hashes", body, timeout=120)["added"])
        except Exception as e:   # noqa: BLE001  (reported below)
            errors.append(repr(e))

    waiting = [threading.Thread(target=add, args=(i,)) for i in range(os.cpu_count() or 1)]
    try:
        for t in waiting:
            t.start()
        # Each add waits for the writer, in a request thread of its own.
        for t in waiting:
            t.join(1.0)
        assert not added and not errors, (added, errors)
        # A lookup is answered meanwhile (the writer is still held).
        got = call(url, "/v1/lookup?hash=" + random_hashes(1, 5)[0] + "&max_distance=256",
                   timeout=20)
        assert got["matches"], got
        assert not added
    finally:
        writer.end()
    for t in waiting:
        t.join(60)
    assert added == [1] * len(waiting) and not errors, (added, errors)
