#!/usr/bin/env python3
"""Replay the fuzz_http corpus against a real `pdqmatch serve`, round after
round, and watch the server's memory: a leak, or a cache that never stops
growing, shows as RSS rising round after round.

Each input is sent as fuzz_http.c sends it (the first byte picks raw bytes,
or a route's body as JSON, multipart or media), to a server built as users
run it, not the sanitizer build, so RSS is the allocator's real figure.
The store is bank "b" as in fuzz_http.c; repeated adds of the same content
ids are refused (409) and deletes remove them again, so the store stays
the same size after the first round.

usage: replay_http.py [--bin build/pdqmatch] [--rounds 20] [CORPUS_DIR...]
Prints RSS after each round; exits 1 when RSS grows more than --max-growth
(default 10%) from the end of round 2 to the last round, or when the
server stops.
"""
import argparse
import concurrent.futures
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# As in fuzz_http.c, in the same order.
ROUTES = [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/openapi.json"), ("GET", "/v1/stats"),
    ("GET", "/v1/lookup?hash=d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"),
    ("POST", "/v1/lookup"), ("POST", "/v1/hash"), ("POST", "/v1/lookup/media"),
    ("GET", "/v1/banks"), ("POST", "/v1/banks"), ("GET", "/v1/banks/b"),
    ("PATCH", "/v1/banks/b"), ("POST", "/v1/banks/b/hashes"),
    ("POST", "/v1/banks/b/media?content_id=f"), ("GET", "/v1/banks/b/content?limit=3"),
    ("GET", "/v1/banks/b/content/x"), ("DELETE", "/v1/banks/b/content/x"),
]
CLOSING = b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
BOUNDARY = b"pdqmfuzz"


def request_of(data):
    """The bytes fuzz_http.c sends for one input."""
    if not data:
        return None
    if data[0] < 128:
        return data[1:] + CLOSING
    pick = data[0] - 128
    method, path = ROUTES[pick % len(ROUTES)]
    body = data[1:]
    start = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
    mode = (pick // len(ROUTES)) % 3
    if mode == 0:
        return start + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" \
            % len(body) + body
    if mode == 1:
        part = (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                + body + b"\r\n--" + BOUNDARY + b"--\r\n")
        return start + b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + \
            b"\r\nContent-Length: %d\r\n\r\n" % len(part) + part
    return start + b"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def exchange(port, req):
    s = socket.socket()
    s.settimeout(1.0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass   # the server may answer early, or hold an incomplete request
    finally:
        s.close()


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "build/pdqmatch"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--max-growth", type=float, default=0.10)
    ap.add_argument("corpus", nargs="*", default=[str(ROOT / "tests/fuzz/corpus/fuzz_http")])
    a = ap.parse_args()
    inputs = []
    for d in a.corpus:
        for f in sorted(Path(d).iterdir()):
            req = request_of(f.read_bytes())
            if req is not None:
                inputs.append(req)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/s.db"
        subprocess.run([a.bin, "banks", "create", "b", "--db", db], check=True,
                       stdout=subprocess.DEVNULL)
        proc = subprocess.Popen([a.bin, "serve", "--db", db, "--create", "--listen", "127.0.0.1:0",
                                 "--timeout", "2", "--max-image-bytes", str(1 << 20),
                                 "--max-video-bytes", str(1 << 20), "--max-frames", "64",
                                 "--max-time", "5"],
                                stderr=subprocess.PIPE, text=True)
        m = re.search(r"listen=127\.0\.0\.1:(\d+)$", proc.stderr.readline().strip())
        if not m:
            print("replay_http: the server did not start", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=60)
            return 1
        port = int(m.group(1))
        # The server logs to stderr: keep reading it, or a full pipe stops it.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        print(f"{len(inputs)} inputs a round, server pid {proc.pid}", flush=True)
        rss = []
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                for r in range(1, a.rounds + 1):
                    t0 = time.monotonic()
                    list(pool.map(lambda q: exchange(port, q), inputs))
                    if proc.poll() is not None:
                        print(f"replay_http: the server stopped ({proc.returncode})",
                              file=sys.stderr)
                        return 1
                    rss.append(rss_mib(proc.pid))
                    print(f"round {r:3d}  {time.monotonic() - t0:6.1f} s  RSS {rss[-1]:7.1f} MiB",
                          flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        if code != 0:
            print(f"replay_http: the server exited {code}", file=sys.stderr)
            return 1
        if len(rss) >= 3:
            growth = rss[-1] / rss[1] - 1
            print(f"RSS after round 2 {rss[1]:.1f} MiB, at the end {rss[-1]:.1f} MiB "
                  f"({growth:+.1%})")
            if growth > a.max_growth:
                print("replay_http: RSS keeps growing", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
