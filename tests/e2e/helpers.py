"""What the end-to-end tests share: the binary, every fixture under
tests/data by name, and small runners and readers.

Fixtures (tests/data):
  pdq/                 Meta's PDQ reference outputs and the images they came
                       from (see pdq/README.md): public-pdq.tsv,
                       public-pdq-dihedral.tsv, public-pdq-details.tsv,
                       synthetic-pdq.tsv, synthetic-pdq-dihedral.tsv,
                       images/, synthetic/, intermediates/.
  bad/empty.jpg        zero bytes
  bad/truncated.jpg    the first 20000 bytes of bridge-mods/aaa-orig.jpg
  bad/truncated.png    the first 4000 bytes of synthetic/noise-rgb-130x70.png
  bad/text.jpg         a line of text named .jpg
  bad/image.svg        a valid SVG: a format pdqmatch refuses
  bad/huge-header.png  a PNG whose header claims 100000x100000 pixels
  vpdq/                Meta's vPDQ sample videos and reference frame hashes
                       (see vpdq/README.md): videos/, reference-outputs/
                       full-default/, hashes/
"""
import contextlib
import csv
import os
import signal
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
PDQ = DATA / "pdq"
IMAGES = PDQ / "images"
BAD = DATA / "bad"

BIN = os.environ.get("PDQMATCH_BIN") or str(ROOT / "build" / "pdqmatch")

FORMATS = ("not an image format pdqmatch reads "
           "(JPEG, PNG, GIF, WebP, TIFF, PPM/PGM, HEIF/AVIF)")

DIHEDRAL_NAMES = ("orig", "rot90", "rot180", "rot270", "flipx", "flipy",
                  "flipplus1", "flipminus1")

# Where pdqmatch differs from Meta's reference on purpose (the same table as
# tests/unit/test_pdq.c): file -> (file whose reference hashes ours equal,
# our quality or None for the reference's).
EXCEPTIONS = {
    # Reference bug: the grey first frame is zero-padded to 3 channels.
    "synthetic/anim-2frames-100x80.gif": (None, 100),
    # Reference bug: it keeps the low byte of 16-bit samples.
    "synthetic/blob-gray16-lowbyte-320x240.png":
        ("synthetic/blob-gray-320x240.png", None),
}


def run(*args, input=None, cwd=None, timeout=120, env=None):
    """Run pdqmatch with args; returns the CompletedProcess (text mode)."""
    return subprocess.run([BIN, *map(str, args)], input=input, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env=env)


def stats(db):
    """`pdqmatch stats --json` of the store at db, as a dict."""
    import json
    p = run("stats", "--db", db, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def read_tsv(path):
    """Rows of a reference TSV as dicts keyed by its header."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def distance(a, b):
    """Hamming distance between two 64-hex hashes."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")


SAMPLES = DATA / "samples"   # a copy of the sample images, so samples/ may grow
VPDQ = DATA / "vpdq"
VIDEOS = VPDQ / "videos"


def ffmpeg(*args):
    """Run the ffmpeg CLI quietly (it makes test videos); fails the test on error."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True, timeout=300)


def max_rss_kb(*args):
    """Run pdqmatch with args in a fresh process and return (CompletedProcess,
    its max RSS in KiB), measured by a wrapper that has no other child."""
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
            " + '\\n' + str(p.returncode) + '\\n' + p.stderr)\n")
    w = subprocess.run(["/usr/bin/python3", "-c", code, BIN, *map(str, args)],
                       capture_output=True, text=True, timeout=600)
    rss, rc, stderr = w.stdout.split("\n", 2)
    return int(rc), stderr, int(rss)


def random_hashes(n, seed):
    """n reproducible random 64-hex hashes."""
    import random
    rng = random.Random(seed)
    return ["%064x" % rng.getrandbits(256) for _ in range(n)]


def flip(h, bits, seed):
    """h with `bits` distinct random bits flipped."""
    import random
    rng = random.Random(seed)
    v = int(h, 16)
    for b in rng.sample(range(256), bits):
        v ^= 1 << b
    return "%064x" % v


def lookup_rows(stdout):
    """CSV lines of 'pdqmatch lookup' as lists of fields."""
    return [line.split(",") for line in stdout.splitlines()]


def drain(proc):
    """Once a server's start-up line is read: keep reading its standard
    error (a record a request) into proc.log_lines, so that its log never
    fills the pipe and stalls it.  log_text(proc) is all of it once the
    server has ended."""
    proc.log_lines = []

    def pump():
        for line in proc.stderr:
            proc.log_lines.append(line)
    proc.log_thread = threading.Thread(target=pump, daemon=True)
    proc.log_thread.start()


def log_text(proc, timeout=30):
    """What drain(proc) read, all of it when the server has ended."""
    if proc.poll() is not None:
        proc.log_thread.join(timeout)
    return "".join(proc.log_lines)


def start_server(*args, env=None):
    """Start `pdqmatch serve ARGS` (a --listen of 127.0.0.1:0 among them)
    and read its standard error up to the start record, which says where it
    listens (a record may come before it: an exchange's fetch starting);
    then drain the rest.  Returns (proc, "http://127.0.0.1:PORT")."""
    import re
    proc = subprocess.Popen([BIN, "serve", *map(str, args)], stderr=subprocess.PIPE,
                            text=True, env=env)
    lines = []
    while True:
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            proc.wait()
            raise AssertionError("the server did not start: " + "".join(lines))
        lines.append(line)
        m = re.search(r"listen=127\.0\.0\.1:(\d+)$", line.strip())
        if m:
            break
    drain(proc)
    return proc, "http://127.0.0.1:" + m.group(1)


def stop_server(proc):
    """A clean stop (SIGTERM), so that a sanitizer build reports any leak as
    a failing exit status; killed if it does not end within a minute."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=60) == 0, log_text(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def small_tmpfs(path, size):
    """A tmpfs of `size` ("12m") mounted at path (made), for full-disk
    tests; the test is skipped where it cannot be mounted (mounting needs
    root: CI runs as root).  Unmounted at the end."""
    import pytest
    path.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + p.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)

