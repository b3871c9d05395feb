#!/usr/bin/env python3
"""make bench, video lookup: a 60 s 720p upload looked up at the defaults
against a store that holds the 4 sample videos and 1M other frame hashes
(1,000 videos of 1,000 frames, from the bench/gen.py corpus), beside the
time to hash the same file (`pdqmatch hash`, a frame a second, vPDQ's
sampling).  Goal (issue 14): the lookup takes at most 1.2x the hashing.

The upload is the doorknob sample (1280x720) looped to 60 s, so it matches
a known video.  Whole-process timings by hyperfine (median of 5 runs).

usage: bench/bench_video_lookup.py BUILD_DIR [--n N] [--data DIR]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import bench_index  # noqa: E402  (the corpus cache)
import video_copies as vc  # noqa: E402


def log(msg):
    print(f"bench_video_lookup: {msg}", file=sys.stderr, flush=True)


def hyperfine(cmd, runs=5):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        p = subprocess.run(["hyperfine", "--style", "none", "--warmup", "1", "--runs", str(runs),
                            "-i", "--export-json", out.name, cmd], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"bench: hyperfine failed:\n{p.stderr}")
        return json.load(open(out.name))["results"][0]["median"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--data", default="/tmp/pdqm-bench-data")
    a = ap.parse_args()
    binary = Path(a.build).resolve() / "pdqmatch"
    cache = Path(a.data)
    cache.mkdir(parents=True, exist_ok=True)
    prefix, _ = bench_index.ensure_data(a.n, cache)
    with tempfile.TemporaryDirectory(prefix="pdqm-vlookup-", dir=cache) as tmp:
        work = Path(tmp)
        upload = work / "upload-720p-60s.mp4"
        doorknob = vc.SOURCES["doorknob"][0]
        vc.ffmpeg("-stream_loop", "-1", "-i", doorknob, "-t", "60", "-vf", "scale=1280:720",
                  *vc.H264, upload)
        # 1M frame hashes as 1,000 videos of 1,000 frames (30 a second).
        frames = work / "frames.csv"
        with open(frames, "w") as out, open(f"{prefix}.db.hex") as hexes:
            out.write("hash,quality,content_id,timestamp,kind\n")
            for i, line in enumerate(hexes):
                if i == a.n:
                    break
                out.write(f"{line.strip()},100,other-{i // 1000},{(i % 1000) / 30:.3f},video\n")
        db = work / "v.db"
        log(f"indexing {a.n:,} frame hashes and the 4 sample videos into {db}")
        subprocess.run([binary, "index", "--db", db, "--bank", "other", "--hash-list", frames,
                        "--quiet"], check=True, capture_output=True, timeout=3600)
        vc.index_sources(binary, db)
        found = vc.lookup(binary, db, upload)
        hashed = hyperfine(f"{binary} hash {upload}")
        looked = hyperfine(f"{binary} lookup --db {db} {upload}")
        mirrored = hyperfine(f"{binary} lookup --db {db} --dihedral {upload}")
    print(f"\nvideo lookup: a 60 s 1280x720 upload (doorknob looped), store of "
          f"{a.n:,} other frame hashes and the 4 sample videos")
    print("| | seconds | / hashing | goal |")
    print("|---|---|---|---|")
    print(f"| `pdqmatch hash` (a frame a second) | {hashed:.3f} | 1.00 | |")
    print(f"| `pdqmatch lookup` at the defaults | {looked:.3f} | {looked / hashed:.2f} | <= 1.2 |")
    print(f"| `pdqmatch lookup --dihedral` | {mirrored:.3f} | {mirrored / hashed:.2f} | |")
    print(f"matched: {', '.join(sorted(found)) or 'nothing'}")


if __name__ == "__main__":
    main()
