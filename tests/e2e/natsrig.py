"""A NATS JetStream cluster and pdqmatch nodes on 127.0.0.1, for the
cluster tests (test_cluster.py) and the cluster bench
(bench/bench_cluster.py): three `nats-server` processes, each with its own
storage folder under a temporary directory, and `pdqmatch serve --nats`
nodes, every one with its own store."""
import re
import shutil
import signal
import socket
import subprocess
import time

import requests

from helpers import BIN, drain

NATS = shutil.which("nats-server") or "/usr/bin/nats-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nats:
    """A JetStream cluster of n servers on loopback (n 1: one server alone)."""

    def __init__(self, tmp, n=3, conf="", scheme="nats"):
        self.tmp, self.n, self.conf = tmp, n, conf
        self.client = [free_port() for _ in range(n)]
        self.route = [free_port() for _ in range(n)]
        self.procs = [None] * n
        for i in range(n):
            self.start(i)
        self.urls = ",".join(f"{scheme}://127.0.0.1:{p}" for p in self.client)
        self.wait_ready()

    def start(self, i):
        conf = self.tmp / f"nats{i}.conf"
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.route)
        conf.write_text(f"""
server_name: n{i}
listen: 127.0.0.1:{self.client[i]}
max_payload: 8MB
jetstream {{ store_dir: "{self.tmp}/js{i}" }}
{self.conf}
""" + (f"""cluster {{ name: pdqm, listen: 127.0.0.1:{self.route[i]}, routes: [ {routes} ] }}
""" if self.n > 1 else ""))
        self.procs[i] = subprocess.Popen([NATS, "-c", str(conf)],
                                         stdout=subprocess.DEVNULL,
                                         stderr=open(self.tmp / f"nats{i}.log", "a"))

    def wait_ready(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            logs = "".join((self.tmp / f"nats{i}.log").read_text() for i in range(self.n)
                           if (self.tmp / f"nats{i}.log").exists())
            if ("JetStream cluster new metadata leader" if self.n > 1
                    else "Server is ready") in logs:
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
    def __init__(self, db, urls, *extra, bin=BIN):
        self.db, self.urls, self.extra, self.bin = db, urls, extra, bin
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.bin, "serve", "--db", str(self.db), "--create",
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


def ready(node):
    return requests.get(node.url + "/readyz", timeout=10).json()


def wait_applied(nodes, seq, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(ready(n)["applied_seq"] >= seq for n in nodes):
            return
        time.sleep(0.05)
    raise AssertionError(f"not every node applied {seq}: {[ready(n) for n in nodes]}")
