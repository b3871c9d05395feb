"""Start-up: a command loads only the shared libraries it uses.

libvips, FFmpeg, libcurl, libmicrohttpd and libnats (about 160 shared
libraries with their own) are loaded on first use, not at start; a plain
JPEG is read with libjpeg alone (issue 18: `--version` took 41 ms and
hashing one small JPEG 67 ms, nearly all of it the dynamic loader).  The
loader's own trace (LD_DEBUG=libs) says what a process loaded."""
import os
import subprocess

from helpers import BIN, IMAGES, SAMPLES, run

LAZY = ("libvips", "libavformat", "libavcodec", "libswscale", "libcurl",
        "libmicrohttpd", "libnats")
SMALL_JPEG = IMAGES / "misc-images" / "small.jpg"
PNG = SAMPLES / "pen-and-coaster.png"


def loaded(*args):
    """The sonames a run of pdqmatch loaded, and the run."""
    env = dict(os.environ, LD_DEBUG="libs")
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=120)
    names = set()
    for line in p.stderr.splitlines():
        if "find library=" in line:
            names.add(line.split("find library=")[1].split(";")[0].strip())
    return names, p


# What a sanitizer build adds to every process (make test SAN=1).
SANITIZER = ("libasan", "libubsan", "libstdc++", "libm.so", "libgcc_s")


def own(names):
    """The libraries the program itself asked for."""
    return sorted(n for n in names if not n.startswith(SANITIZER))


def heavy(names):
    return sorted(n for n in names if n.startswith(LAZY))


def test_version_loads_no_media_or_network_library():
    names, p = loaded("--version")
    assert p.returncode == 0 and p.stdout.startswith("pdqmatch ")
    assert heavy(names) == []
    assert len(own(names)) <= 8, own(names)


def test_hashing_a_jpeg_loads_neither_libvips_nor_ffmpeg():
    names, p = loaded("hash", SMALL_JPEG)
    assert p.returncode == 0, p.stderr[-2000:]
    assert heavy(names) == []
    # The same hash as libvips gives (tests/unit/test_image.c compares the
    # pixels of every JPEG of the tests both ways).
    assert p.stdout == run("hash", SMALL_JPEG).stdout


def test_other_formats_load_libvips_when_needed():
    names, p = loaded("hash", SMALL_JPEG, PNG)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "libvips.so.42" in names or any(n.startswith("libvips") for n in names)
    assert len(p.stdout.splitlines()) == 2


def test_lookup_of_a_hash_loads_no_media_library(tmp_path):
    db = tmp_path / "s.db"
    jpeg = SAMPLES / "bridge-small.jpg"
    assert run("index", "--db", db, "--bank", "b", jpeg).returncode == 0
    h = run("hash", jpeg).stdout.split(",")[0]
    names, p = loaded("lookup", "--db", db, h)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "bridge-small.jpg" in p.stdout
    assert heavy(names) == []


def test_a_missing_library_is_a_clear_error(tmp_path):
    """A library that cannot be loaded is named in the error, not a crash."""
    # An empty directory first on the loader's path does not hide the real
    # library; a broken file named like it does.
    fake = tmp_path / "lib"
    fake.mkdir()
    (fake / "libvips.so.42").write_bytes(b"not a library")
    env = dict(os.environ, LD_LIBRARY_PATH=str(fake))
    p = subprocess.run([BIN, "hash", PNG], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode != 0
    assert "libvips.so.42" in p.stderr, p.stderr
