"""pdqmatch serve's media limits: configurable, answered with 413, the
server stays up with bounded memory, and nothing is stored."""
import re
import signal
import struct
import subprocess
import zlib

import pytest
import requests

from helpers import BIN, SAMPLES, VIDEOS, run

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
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0",
                             "--max-image-bytes", "200000", "--max-duration", "5",
                             "--max-pixels", "2000000"], stderr=subprocess.PIPE, text=True)
    m = re.search(r":(\d+)$", proc.stderr.readline().strip())
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
