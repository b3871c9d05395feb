"""Issue 14: transformed copies of the sample videos, made here with ffmpeg
(video_copies.py), each looked up at the default settings against a store
of the four sources indexed at the defaults.  Every copy matches its
source(s) and nothing else; mirrors and turns under --dihedral; a
compilation by the segment rule, with its time ranges; the synthetic
videos match nothing; and the defaults store at most 15 hashes a second.

The copies take a few minutes to encode; they are kept between the plain
and the sanitizer runs in a directory named after the recipe and ffmpeg's
version (PDQM_VIDEO_COPIES overrides it)."""
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

import video_copies as vc
from helpers import BIN

HERE = Path(__file__).resolve().parent


def copies_dir():
    if os.environ.get("PDQM_VIDEO_COPIES"):
        return Path(os.environ["PDQM_VIDEO_COPIES"])
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    key = hashlib.sha256((HERE / "video_copies.py").read_bytes() + version.encode()).hexdigest()
    return Path(tempfile.gettempdir()) / f"pdqmatch-video-copies-{key[:16]}"


@pytest.fixture(scope="module")
def copies():
    d = copies_dir()
    done = d / "done"
    if not done.exists():
        made = vc.make_copies(d)
        done.write_text("\n".join(c.path.name for c in made) + "\n")
        return made
    import unittest.mock
    with unittest.mock.patch.object(vc, "ffmpeg", lambda *a: None):
        return vc.make_copies(d)     # the same list, the files already made


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("copies") / "known.db"
    vc.index_sources(BIN, db)
    return db


def named(copies, what):
    return [c for c in copies if c.what == what]


# What each kind of copy is, and how many of the four sources it has.
KINDS = ["clip-2s", "clip-5s", "clip-8s", "fps-29.97", "fps-15", "vfr", "crf-35", "half",
         "hflip", "transpose", "letterbox", "pillarbox"]


@pytest.mark.parametrize("what", KINDS)
def test_each_copy_matches_its_source_at_the_defaults(copies, store, what):
    group = named(copies, what)
    assert group, what
    wrong = []
    for c in group:
        extra = ["--dihedral"] if c.needs == "dihedral" else []
        found = vc.lookup(BIN, store, c.path, *extra)
        if set(found) != set(c.sources):
            wrong.append((c.path.name, sorted(found)))
        for m in found.values():
            if c.needs == "dihedral":
                assert m["orientation"] != "original", (c.path.name, m)
            if what in ("letterbox", "pillarbox"):
                assert m["bars_cut"], (c.path.name, m)
    assert wrong == []


# The two compilations that hold doorknob test the segment rule's time:
# 2.1 of its 4 s are below quality 50 (it fades to black and back), so a
# sample a second sees 1.1 s of it with quality, and the samples of no
# quality after them neither end the segment nor count against it.
@pytest.mark.parametrize("name", [
    "concat-chair-pattern.mp4",
    "concat-doorknob-chair.mp4",
    "concat-padded-doorknob.mp4",
    "concat-pattern-testsrc2.mp4",
    "concat-chair-mandelbrot.mp4",
])
def test_a_compilation_matches_each_known_part_with_its_time_range(copies, store, name):
    c = next(c for c in copies if c.path.name == name)
    found = vc.lookup(BIN, store, c.path)
    assert set(found) == set(c.sources), sorted(found)
    for source, (start, end) in c.sources.items():
        m = found[source]
        assert m["rule"] in ("percent", "segment")
        seg = max(m["segments"], key=lambda s: s["query_end"] - s["query_start"])
        assert abs(seg["query_start"] - start) <= 1, (source, seg)
        assert abs(seg["query_end"] - end) <= 1, (source, seg)
    # A known video that is a part of a longer upload is a segment match.
    assert any(m["rule"] == "segment" for m in found.values())


def test_a_synthetic_video_matches_nothing(copies, store):
    for c in named(copies, "synthetic"):
        assert vc.lookup(BIN, store, c.path) == {}, c.path.name
        assert vc.lookup(BIN, store, c.path, "--dihedral") == {}, c.path.name


def test_the_defaults_store_at_most_15_hashes_a_second(store):
    per = vc.stored_per_second(BIN, store)
    assert set(per) == set(vc.SOURCES)
    assert all(0 < v <= 15 for v in per.values()), per


def test_each_source_matches_itself_fully(store):
    for name, (path, _) in vc.SOURCES.items():
        found = vc.lookup(BIN, store, path)
        assert set(found) == {name}
        assert found[name]["query_pct"] == 100, (name, found[name])
