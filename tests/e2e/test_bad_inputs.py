"""The bad-input catalogue: hostile files and requests, each with its exact
outcome, from the command line and from the service, which stays up, keeps
its memory bounded and stores nothing."""
import socket

import pytest
import requests

from helpers import BIN, ROOT, run

BAD = ROOT / "tests" / "data" / "bad"

# File, then what `pdqmatch hash` says of it (stderr, exit 1), or its
# output line when it is an image after all.
FILES = [
    ("bomb-20000x20000.gif",
     "20000x20000 is 400000000 pixels, over the limit of 250000000 pixels"),
    ("bomb-16383x16383.webp",
     "16383x16383 is 268402689 pixels, over the limit of 250000000 pixels"),
    ("huge-header.png",
     "100000x100000 is 10000000000 pixels, over the limit of 250000000 pixels"),
    ("huge-atom.mp4", "no video stream in the file"),
    ("huge-atom64.mp4", "no video stream in the file"),
    ("polyglot-gif-js.gif", "corrupt gif data (gifload_source: no frames in GIF)"),
    ("polyglot-png-jpeg.png", "corrupt png data"),
    ("html-named-jpg.jpg",
     "not an image format pdqmatch reads (JPEG, PNG, GIF, WebP, TIFF, PPM/PGM, HEIF/AVIF)"),
    ("truncated-tall.pbm",
     "truncated ppm data: 1x2287334 needs 2287334 bytes of pixel data, the file has 2"),
]

# Images after all: the JPEG of a JPEG+ZIP polyglot hashes as the JPEG
# alone; the TIFF's IFD loop is cut short and its first page hashed.
HASHED = [
    ("polyglot-jpeg-zip.jpg",
     "cfb2009ddd21c6dab0046a7745b5984757a8a4535b3377aea2591d32b33ff940,100"),
    ("ifd-loop-5000.tif",
     "0000000000000000000000000000000000000000000000000000000000000000,0"),
]


@pytest.mark.parametrize("name,message", FILES)
def test_hash_refuses(name, message):
    p = run("hash", BAD / name, timeout=60)
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == f"pdqmatch: {BAD / name}: {message}\n"


@pytest.mark.parametrize("name,line", HASHED)
def test_hash_reads(name, line):
    p = run("hash", BAD / name, timeout=60)
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout == f"{line},{BAD / name}\n"


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def test_service_refuses_every_file_and_stays_small(server):
    url, proc, db = server
    before = requests.get(url + "/v1/stats", timeout=10).json()
    for name, message in FILES:
        for route in ("/v1/hash", "/v1/lookup/media", "/v1/banks/photos/media?content_id=bad"):
            r = requests.post(url + route, data=(BAD / name).read_bytes(),
                              headers={"Content-Type": "application/octet-stream"}, timeout=60)
            assert 400 <= r.status_code < 500, (name, route, r.status_code)
            assert r.json()["error"]["message"] == message, (name, route)
    for name, line in HASHED:
        r = requests.post(url + "/v1/hash", data=(BAD / name).read_bytes(),
                          headers={"Content-Type": "application/octet-stream"}, timeout=60)
        assert r.status_code == 200
        assert f'{r.json()["pdq"]["hash"]},{r.json()["pdq"]["quality"]}' == line
    assert requests.get(url + "/v1/stats", timeout=10).json() == before
    assert rss_mib(proc.pid) < 300
    assert requests.get(url + "/healthz", timeout=10).ok


def raw(url, data):
    """Send raw bytes, return the reply's bytes (the server closes)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
            if b"\r\n\r\n" in reply and b"Connection: close" in reply.split(b"\r\n\r\n")[0]:
                head, _, body = reply.partition(b"\r\n\r\n")
                length = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                          if h.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    return reply


def test_ten_thousand_headers_get_431(server):
    # libmicrohttpd answers this itself, with its own HTML body.
    url, proc, db = server
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(10000))
    reply = raw(url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert requests.get(url + "/healthz", timeout=10).ok


def test_a_one_megabyte_url_gets_414(server):
    url, proc, db = server
    reply = raw(url, b"GET /v1/lookup?hash=" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 414 ")
    assert requests.get(url + "/healthz", timeout=10).ok


@pytest.mark.parametrize("path,message", [
    (b"/v1/banks/photos/content/\xc3\x28", "a content id must be UTF-8"),
    (b"/v1/banks/photos/content/%c3%28", "a content id must be UTF-8"),
    (b"/v1/banks/%ff%fe", "a bank name holds only letters, digits, '.', '_' and '-'"),
])
def test_an_invalid_utf8_path_gets_400(server, path, message):
    url, proc, db = server
    reply = raw(url, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert ('"message":"%s"' % message).encode() in reply.replace(b"\\'", b"'")


def test_deeply_nested_multipart_gets_400(server):
    """A form whose field 'file' is a multipart/mixed body nested 1000 deep:
    the form parser gives up on it, and the request gets 400."""
    url, proc, db = server
    inner = b"innermost"
    for depth in range(1000):
        b = b"b%d" % depth
        inner = (b"--" + b + b"\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (depth + 1)
                 + inner + b"\r\n--" + b + b"--\r\n")
    body = (b"--top\r\nContent-Disposition: form-data; name=\"file\"\r\n"
            b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + inner + b"\r\n--top--\r\n")
    r = requests.post(url + "/v1/hash", data=body, timeout=30,
                      headers={"Content-Type": "multipart/form-data; boundary=top"})
    assert (r.status_code, r.json()["error"]) == \
        (400, {"code": "invalid", "message": "the multipart/form-data body is malformed"})
    assert requests.get(url + "/healthz", timeout=10).ok
