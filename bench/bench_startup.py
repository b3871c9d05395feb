#!/usr/bin/env python3
"""make bench, start-up table: the work users do a call at a time, beside
Meta's reference tools.

Whole processes timed by hyperfine (median; -N, no shell), outputs checked
equal first.  The reference is Meta's pdq-photo-hasher and vpdq-hash-video
built from the public facebook/ThreatExchange sources by
bench/build_reference.sh (REFERENCE_DIR, default /tmp/pdqm-reference/bin);
when it is not there, its figures are quoted from bench/reference-timing.txt
(measured on this class of machine) and marked so.  pdq-photo-hasher runs
ImageMagick's `convert` from /usr/bin for every image, as it is meant to.

Goals (issue 18): --version <= 10 ms; hashing one small JPEG <= 15 ms; one
lookup on a 1M store <= 15 ms; vPDQ at one frame a second >= 2x the
reference and faster than every frame; every frame >= 3x; 1,000 lookups in
one process <= 0.1 ms a query.

usage: bench/bench_startup.py BUILD_DIR [--data DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (hyperfine, the public images)
import bench_index  # noqa: E402  (the corpus generator's cache)

IMAGES = ROOT / "tests" / "data" / "pdq" / "images"
VIDEOS = ROOT / "tests" / "data" / "vpdq" / "videos"
SMALL = IMAGES / "misc-images" / "wee.jpg"   # 34 x 42
SAMPLES = ["chair-22-sd-sepia-bar", "doorknob-hd-no-bar", "pattern-hd-no-bar",
           "test-padded-dimensions"]
# The reference's own PATH: its `convert` must be ImageMagick's.
REF_ENV = dict(os.environ, PATH="/usr/bin:/bin")

# Quoted when the reference is not built (bench/reference-timing.txt,
# "Start-up and one file"): seconds.
QUOTED = {"usage": 0.0244, "one-jpeg": 0.0099, "49-images": 2.63,
          "video-r0": {"chair-22-sd-sepia-bar": 1.30, "doorknob-hd-no-bar": 1.15,
                       "pattern-hd-no-bar": 1.20, "test-padded-dimensions": 1.03},
          "video-r1": {"chair-22-sd-sepia-bar": 0.58, "doorknob-hd-no-bar": 0.21,
                       "pattern-hd-no-bar": 0.55, "test-padded-dimensions": 0.15}}


def hyperfine(cmds, runs=10, warmup=2, env=None, failing=False):
    """Median seconds of each command (a list of argv lists), no shell."""
    return bench.hyperfine(cmds, runs, warmup, cwd=ROOT, env=env, no_shell=True,
                           failing=failing)


def output(cmd, env=None):
    return subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env,
                          check=True).stdout


def ms(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--data", default="/tmp/pdqm-bench-data")
    ap.add_argument("--reference", default=os.environ.get("REFERENCE_DIR",
                                                          "/tmp/pdqm-reference/bin"))
    a = ap.parse_args()
    pdqm = Path(a.build).resolve() / "pdqmatch"
    ref = Path(a.reference)
    hasher, vhasher = ref / "pdq-photo-hasher", ref / "vpdq-hash-video"
    live = hasher.exists() and vhasher.exists() and Path("/usr/bin/convert").exists()
    rows = []

    def row(what, ours, theirs, goal, quoted=False):
        ratio = theirs / ours if theirs else None
        rows.append((what, ms(ours), (ms(theirs) + (" (quoted)" if quoted else ""))
                     if theirs else "-", f"{ratio:.2f}x" if ratio else "-", goal))

    # --version and the reference's usage: nothing but start-up.
    (ours,) = hyperfine([[pdqm, "--version"]], runs=30)
    theirs = (hyperfine([[vhasher]], runs=30, env=REF_ENV, failing=True)[0] if live
              else QUOTED["usage"])
    row("`--version` / usage", ours, theirs, "<= 10 ms", not live)

    # One small JPEG, one process.
    if live:
        assert output([hasher, SMALL], REF_ENV).split(",")[0] == \
            output([pdqm, "hash", SMALL]).split(",")[0]
    (ours,) = hyperfine([[pdqm, "hash", SMALL]], runs=30)
    theirs = hyperfine([[hasher, SMALL]], runs=30, env=REF_ENV)[0] if live else QUOTED["one-jpeg"]
    row("hash one 34x42 JPEG, one process", ours, theirs, "<= 15 ms", not live)

    # The 49 public images, one process each way.
    paths = [IMAGES / f for f in bench.public_images()]
    (ours,) = hyperfine([[pdqm, "hash", *paths]], runs=5, warmup=1)
    theirs = (hyperfine([[hasher, *paths]], runs=3, warmup=1, env=REF_ENV)[0] if live
              else QUOTED["49-images"])
    row(f"hash {len(paths)} public images", ours, theirs, "", not live)

    # vPDQ: every frame, and one frame a second (both tools' default).
    with tempfile.TemporaryDirectory() as d:
        for mode, r in (("every frame", "0"), ("one frame a second", "1")):
            for name in SAMPLES:
                v = VIDEOS / f"{name}.mp4"
                if live:
                    out = Path(d) / "ref.txt"
                    subprocess.run([vhasher, "-i", v, "-o", out, "-r", r], check=True,
                                   capture_output=True, env=REF_ENV)
                    if out.read_text() != output([pdqm, "hash", "--interval", r, v]):
                        sys.exit(f"bench_startup: {name} -r {r}: outputs differ")
                (ours,) = hyperfine([[pdqm, "hash", "--interval", r, v]], runs=5, warmup=1)
                theirs = (hyperfine([[vhasher, "-i", v, "-o", "/dev/null", "-r", r]], runs=5,
                                    warmup=1, env=REF_ENV)[0] if live
                          else QUOTED["video-r" + r][name])
                goal = ">= 3x" if r == "0" else ">= 2x, and under every frame"
                row(f"vPDQ {mode}, {name}", ours, theirs, goal, not live)

    # Lookups on a 1M store: one hash, then 1,000 from a hash list.
    cache = Path(a.data)
    cache.mkdir(parents=True, exist_ok=True)
    prefix, _ = bench_index.ensure_data(1000000, cache)
    with tempfile.TemporaryDirectory(dir=cache) as d:
        db = Path(d) / "s.db"
        subprocess.run([pdqm, "index", "--db", db, "--bank", "b", "--hash-list",
                        f"{prefix}.db.hex"], check=True, capture_output=True)
        q = Path(f"{prefix}.q.hex").read_text().split()[0]
        (one,) = hyperfine([[pdqm, "lookup", "--db", db, q]], runs=30)
        rows.append(("one `lookup` of a hash, 1M store", ms(one), "-", "-", "<= 15 ms"))
        (batch,) = hyperfine([[pdqm, "lookup", "--db", db, "--hash-list", f"{prefix}.q.hex"]],
                             runs=10)
        # batch seconds for 1,000 queries: numerically, ms a query.
        rows.append(("`lookup --hash-list`, 1,000 queries, 1M store",
                     f"{batch * 1000:.0f} ms, {batch:.3f} ms a query", "-", "-",
                     "<= 0.1 ms a query"))

    header = ("what", "pdqmatch", "Meta reference", "speed-up", "goal")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
    print("Start-up and one file: whole processes, hyperfine medians, outputs equal")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print("Reference: " + (f"built at {ref} (bench/build_reference.sh)" if live else
                           "quoted from bench/reference-timing.txt (not built here)"))


if __name__ == "__main__":
    main()
