"""pdqmatch hash: reference vectors, output formats, and bad input."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from helpers import (BAD, BIN, EXCEPTIONS, FORMATS, IMAGES, PDQ, distance,
                     read_tsv, run)


# ---------------------------------------------------------------------------
# Reference vectors through the command line

def expected_plain(rows, by_file):
    """The line the reference prints for each row, with our exceptions."""
    lines = []
    for r in rows:
        h, q = r["hash"], r["quality"]
        if r["relpath"] in EXCEPTIONS:
            same_as, quality = EXCEPTIONS[r["relpath"]]
            if same_as:
                h = by_file[same_as]["hash"]
            if quality is not None:
                q = str(quality)
        lines.append(f"{h},{q},{r['relpath']}")
    return lines


@pytest.mark.parametrize("tsv,cwd", [("public-pdq.tsv", IMAGES),
                                     ("synthetic-pdq.tsv", PDQ)])
def test_reference_vectors(tsv, cwd):
    rows = read_tsv(PDQ / tsv)
    assert len(rows) in (49, 39)
    by_file = {r["relpath"]: r for r in rows}
    p = run("hash", *[r["relpath"] for r in rows], cwd=cwd)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert p.stdout.splitlines() == expected_plain(rows, by_file)


def test_exceptions_are_measured():
    """Each exception's distance from the reference, as measured."""
    rows = {r["relpath"]: r for r in read_tsv(PDQ / "synthetic-pdq.tsv")}
    files = list(EXCEPTIONS)
    p = run("hash", *files, cwd=PDQ)
    got = dict((line.split(",")[2], line.split(",")) for line in p.stdout.splitlines())
    gif = got["synthetic/anim-2frames-100x80.gif"]
    assert distance(gif[0], rows["synthetic/anim-2frames-100x80.gif"]["hash"]) == 0
    assert (gif[1], rows["synthetic/anim-2frames-100x80.gif"]["quality"]) == ("100", "14")
    low = got["synthetic/blob-gray16-lowbyte-320x240.png"]
    assert distance(low[0], rows["synthetic/blob-gray16-lowbyte-320x240.png"]["hash"]) == 156
    # CMYK.jpg needs no exception: decoded as ImageMagick does, 0 bits.
    cmyk = read_tsv(PDQ / "public-pdq.tsv")
    cmyk = next(r for r in cmyk if r["relpath"] == "misc-images/modes/CMYK.jpg")
    p = run("hash", "misc-images/modes/CMYK.jpg", cwd=IMAGES)
    assert p.stdout == f"{cmyk['hash']},100,misc-images/modes/CMYK.jpg\n"


@pytest.mark.parametrize("tsv,cwd", [("public-pdq-dihedral.tsv", IMAGES),
                                     ("synthetic-pdq-dihedral.tsv", PDQ)])
def test_dihedral_vectors(tsv, cwd):
    rows = read_tsv(PDQ / tsv)
    by_file = {r["relpath"]: r for r in rows}
    names = ["orig", "rot90", "rot180", "rot270", "flipx", "flipy",
             "flipplus1", "flipminus1"]
    p = run("hash", "--dihedral", *[r["relpath"] for r in rows], cwd=cwd)
    assert p.returncode == 0, p.stderr
    expected = []
    for r in rows:
        src, q = r, r["quality"]
        if r["relpath"] in EXCEPTIONS:
            same_as, quality = EXCEPTIONS[r["relpath"]]
            src = by_file[same_as] if same_as else r
            q = str(quality) if quality is not None else q
        expected.append(",".join([src[n] for n in names] + [q, r["relpath"]]))
    assert p.stdout.splitlines() == expected


# ---------------------------------------------------------------------------
# Output formats and file lists

def test_json_output():
    details = {r["relpath"]: r for r in read_tsv(PDQ / "public-pdq-details.tsv")}
    dih = {r["relpath"]: r for r in read_tsv(PDQ / "public-pdq-dihedral.tsv")}
    files = ["bridge-mods/aaa-orig.jpg", "misc-images/wee.jpg",
             "misc-images/modes/LA.png"]
    p = run("hash", "--json", "--dihedral", *files, cwd=IMAGES)
    assert p.returncode == 0, p.stderr
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(objs) == 3
    for f, o in zip(files, objs):
        data = (IMAGES / f).read_bytes()
        assert list(o) == ["file", "hash", "quality", "width", "height",
                           "sha256", "md5", "dihedral"]
        assert o["file"] == f
        assert o["hash"] == details[f]["hash"]
        assert o["quality"] == int(details[f]["quality"])
        assert o["width"] == int(details[f]["decoded_w"])
        assert o["height"] == int(details[f]["decoded_h"])
        assert o["sha256"] == hashlib.sha256(data).hexdigest()
        assert o["md5"] == hashlib.md5(data).hexdigest()
        assert o["dihedral"] == [dih[f][n] for n in
                                 ("orig", "rot90", "rot180", "rot270", "flipx",
                                  "flipy", "flipplus1", "flipminus1")]
    # Without --dihedral there is no dihedral key.
    p = run("hash", "--json", files[0], cwd=IMAGES)
    assert "dihedral" not in json.loads(p.stdout)


def test_file_names_from_stdin_in_order():
    a, b, c = ("bridge-mods/square-128x128.jpg", "misc-images/wee.jpg",
               "bridge-mods/square-256x256.jpg")
    p = run("hash", a, "-", c, input=f"{b}\n\n./{b}\r\n", cwd=IMAGES)
    assert p.returncode == 0, p.stderr
    names = [line.split(",", 2)[2] for line in p.stdout.splitlines()]
    assert names == [a, b, f"./{b}", c]   # file names exactly as given


def test_many_files_keep_their_order(tmp_path):
    """More files than the pool's window: still printed in input order."""
    files = sorted(str(p.relative_to(PDQ)) for p in (PDQ / "synthetic").iterdir())
    listing = "\n".join(files * 8) + "\n"
    p = run("hash", "--threads", "3", "-", input=listing, cwd=PDQ)
    names = [line.split(",", 2)[2] for line in p.stdout.splitlines()]
    assert names == files * 8
    assert p.returncode == 0, p.stderr


def test_threads_do_not_change_output():
    files = [r["relpath"] for r in read_tsv(PDQ / "public-pdq.tsv")]
    one = run("hash", "--threads", "1", *files, cwd=IMAGES)
    two = run("hash", "--threads", "2", *files, cwd=IMAGES)
    assert one.returncode == two.returncode == 0
    assert one.stdout == two.stdout


def test_json_file_name_not_utf8(tmp_path):
    name = b"caf\xe9.png"   # Latin-1, not UTF-8
    path = os.path.join(os.fsencode(tmp_path), name)
    shutil.copy(PDQ / "synthetic" / "tiny-5x5.png", path)
    p = subprocess.run([BIN, "hash", "--json", path], capture_output=True)
    assert p.returncode == 0
    o = json.loads(p.stdout)
    assert o["file"].endswith("caf\ufffd.png")


# ---------------------------------------------------------------------------
# Bad input: one clear line each, exit status 1, no crash, no hang

@pytest.mark.parametrize("name,reason", [
    ("empty.jpg", "empty file (0 bytes)"),
    ("truncated.jpg", "corrupt or truncated jpeg data (VipsJpeg: Premature end of input file)"),
    ("truncated.png", "corrupt or truncated png data (vipspng: libpng read error)"),
    ("text.jpg", FORMATS),
    ("image.svg", FORMATS),
    ("huge-header.png", "100000x100000 is 10000000000 pixels, over the limit of 250000000 pixels"),
])
def test_bad_files(name, reason):
    p = run("hash", name, cwd=BAD)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == f"pdqmatch: {name}: {reason}\n"


def test_directory_and_missing_file():
    p = run("hash", "bad", "bad/missing.png", cwd=BAD.parent)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == ("pdqmatch: bad: is a directory\n"
                        "pdqmatch: bad/missing.png: No such file or directory\n")


def test_unreadable_file():
    """A file without read permission.  Root reads everything, so as root
    the command runs as 'nobody' (setpriv) against a copy nobody may not
    read."""
    work = tempfile.mkdtemp(prefix="pdqmatch-perm-")
    try:
        os.chmod(work, 0o755)
        target = os.path.join(work, "secret.png")
        shutil.copy(PDQ / "synthetic" / "tiny-5x5.png", target)
        os.chmod(target, 0)
        cmd = [BIN, "hash", target]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534",
                   "--clear-groups", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert p.returncode == 1
        assert p.stdout == ""
        assert p.stderr == f"pdqmatch: {target}: Permission denied\n"
    finally:
        shutil.rmtree(work)


def test_pixel_limit_is_checked_before_decoding():
    start = time.monotonic()
    p = run("hash", "huge-header.png", cwd=BAD)
    assert p.returncode == 1
    assert "over the limit of 250000000 pixels" in p.stderr
    assert time.monotonic() - start < 30   # a bound against hangs, not a timing
    # --max-pixels moves the limit both ways.
    p = run("hash", "--max-pixels", "24", PDQ / "synthetic" / "tiny-5x5.png")
    assert p.returncode == 1
    assert p.stderr.endswith("tiny-5x5.png: 5x5 is 25 pixels, over the limit of 24 pixels\n")
    p = run("hash", "--max-pixels", "25", PDQ / "synthetic" / "tiny-5x5.png")
    assert p.returncode == 0
    # Past the limit, the claimed size meets the real (tiny) data: an error.
    p = run("hash", "--max-pixels", "20000000000", "huge-header.png", cwd=BAD)
    assert p.returncode == 1
    assert p.stderr == ("pdqmatch: huge-header.png: corrupt or truncated png data "
                        "(vipspng: libpng read error)\n")


def test_max_bytes():
    p = run("hash", "--max-bytes", "1000", "bridge-mods/aaa-orig.jpg", cwd=IMAGES)
    assert p.returncode == 1
    assert p.stderr == ("pdqmatch: bridge-mods/aaa-orig.jpg: 361182 bytes is over "
                        "the limit of 1000 bytes\n")


def test_failures_do_not_stop_other_files():
    good = str(IMAGES / "misc-images" / "wee.jpg")
    p = run("hash", good, BAD / "text.jpg", good)
    assert p.returncode == 1
    assert len(p.stdout.splitlines()) == 2
    assert p.stderr == f"pdqmatch: {BAD / 'text.jpg'}: {FORMATS}\n"


# ---------------------------------------------------------------------------
# Help, version, usage errors

def test_help_and_version():
    p = run("--help")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: pdqmatch COMMAND")
    assert "  hash " in p.stdout
    p = run("hash", "--help")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: pdqmatch hash [--dihedral] [--json]")
    p = run("--version")
    assert p.returncode == 0
    assert p.stdout == "pdqmatch 0.1.0\n"


@pytest.mark.parametrize("args,message,hint", [
    ([], "no command given", "pdqmatch --help"),
    (["frob"], "unknown command 'frob'", "pdqmatch --help"),
    (["--frob"], "unknown option '--frob'", "pdqmatch --help"),
    (["hash"], "no FILE given", "pdqmatch hash --help"),
    (["hash", "--frob", "x.jpg"], "unknown option '--frob'", "pdqmatch hash --help"),
    (["hash", "--threads", "0", "x.jpg"],
     "--threads takes a number from 1 to 256, not '0'", "pdqmatch hash --help"),
    (["hash", "--max-pixels", "-5", "x.jpg"],
     "--max-pixels takes a number from 1 to 1000000000000000, not '-5'", "pdqmatch hash --help"),
    (["hash", "x.jpg", "--max-bytes"], "option '--max-bytes' needs a value",
     "pdqmatch hash --help"),
])
def test_usage_errors(args, message, hint):
    p = run(*args)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr == f"pdqmatch: {message}\ntry '{hint}'\n"
