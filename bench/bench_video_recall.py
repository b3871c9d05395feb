#!/usr/bin/env python3
"""make bench, video recall: transformed copies of 4 sample videos (clips,
re-timings, re-encodes, mirrors, bars, compilations; tests/e2e/video_copies.py
makes them with ffmpeg) looked up at the defaults, beside the baseline of
one frame a second stored and queried (vPDQ's and pytx's default sampling).

Prints, per source video, the hashes stored a second of video, and per
kind of copy, how many copies matched their source(s) and how many matched
something else, for each setting.

usage: bench/bench_video_recall.py BUILD_DIR [--work DIR] [--verbose]
  --work DIR   keep the copies and stores there (made again each run)
  --verbose    name each copy missed or matched falsely, on stderr
"""
import argparse
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import video_copies as vc  # noqa: E402

SETTINGS = [
    # name, index arguments, lookup arguments, whether a copy needing
    # "dihedral" (a mirror) is looked up with --dihedral
    # vPDQ's and python-threatexchange's sampling, on both sides.
    ("1 fps stored, 1 fps queried", ["--interval", "1", "--prune-distance", "0",
                                     "--max-per-second", "0"], ["--burst", "1"], False),
    # Every frame stored, pruned with no cap a second, queried at 1 fps.
    ("every frame pruned at 31, 1 fps", ["--interval", "0", "--prune-distance", "31",
                                         "--max-per-second", "0"], ["--burst", "1"], True),
    # The defaults: pruned at 31, at most 15 a second; 3 frames a second.
    ("defaults (--dihedral: mirrors)", [], [], True),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--work", default=None)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    binary = Path(a.build).resolve() / "pdqmatch"
    work = Path(a.work or tempfile.mkdtemp(prefix="pdqm-video-recall-"))
    copies_dir = work / "copies"
    print("bench_video_recall: making the copies with ffmpeg", file=sys.stderr, flush=True)
    copies = vc.make_copies(copies_dir)
    results = {}
    for name, index_args, lookup_args, dihedral in SETTINGS:
        db = work / (name.replace(" ", "_").replace(",", "") + ".db")
        for p in (db, Path(f"{db}-lock")):
            p.unlink(missing_ok=True)
        vc.index_sources(binary, db, *index_args)
        per_source = vc.stored_per_second(binary, db)
        rows = defaultdict(lambda: [0, 0, 0])   # kind -> [copies, found, false]
        for c in copies:
            extra = ["--dihedral"] if c.needs == "dihedral" and dihedral else []
            found = vc.lookup(binary, db, c.path, *lookup_args, *extra)
            ok, clean = vc.judge(c, found)
            r = rows[c.what]
            r[0] += 1
            r[1] += ok and bool(c.sources)
            r[2] += not clean
            if a.verbose and (not ok or not clean):
                print(f"  {name}: {c.path.name}: found {sorted(found)}", file=sys.stderr)
        results[name] = (per_source, rows)
    names = [s[0] for s in SETTINGS]
    print(f"\nvideo recall: {len(copies)} copies of {len(vc.SOURCES)} sample videos "
          f"(matched its source(s) / copies, false matches)")
    print(f"{'copy':16}" + "".join(f"{n:>34}" for n in names))
    for what in dict.fromkeys(c.what for c in copies):
        cells = []
        for n in names:
            total, found, false = results[n][1][what]
            cells.append(f"{found if what != 'synthetic' else '-'}/{total}, {false} false")
        print(f"{what:16}" + "".join(f"{x:>34}" for x in cells))
    print(f"\nstored hashes a second of video")
    print(f"{'source':16}" + "".join(f"{n:>34}" for n in names))
    for src in vc.SOURCES:
        print(f"{src:16}" + "".join(f"{results[n][0][src]:>34.1f}" for n in names))
    if a.work is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
