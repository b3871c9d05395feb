#!/usr/bin/env python3
"""make bench, video table: vPDQ frame hashing beside Meta's reference.

Whole-process timings by hyperfine (median of repeated runs); max RSS by
GNU time.  The reference's figures (one thread, every frame) are quoted
from the issue that set the goals; the reference is not built here.

usage: bench/bench_video.py BUILD_DIR
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT / "tests" / "data" / "vpdq" / "videos"
REF = ROOT / "tests" / "data" / "vpdq" / "reference-outputs" / "full-default"

# Meta's vpdq-hash-video, one thread, every frame (frames a second).
REFERENCE_FPS = {"480x720": 240, "1280x720": (55, 87), "1080x1080": (55, 87), "720x1280": (55, 87)}
SAMPLES = [("chair-22-sd-sepia-bar", "480x720"), ("doorknob-hd-no-bar", "1280x720"),
           ("pattern-hd-no-bar", "720x1280"), ("test-padded-dimensions", "1080x1080")]


def hyperfine(cmd, runs=5):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        p = subprocess.run(["hyperfine", "--style", "none", "--warmup", "1", "--runs", str(runs),
                            "--export-json", out.name, cmd], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"bench: hyperfine failed:\n{p.stderr}")
        return json.load(open(out.name))["results"][0]["median"]


def max_rss_mb(args):
    p = subprocess.run(["/usr/bin/time", "-v", *args], capture_output=True, text=True)
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024


def main():
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
    pdqmatch = build / "pdqmatch"
    rows = []
    for name, size in SAMPLES:
        frames = len((REF / f"{name}.txt").read_text().splitlines())
        t = hyperfine(f"{pdqmatch} hash --interval 0 {VIDEOS / (name + '.mp4')}")
        fps = frames / t
        ref = REFERENCE_FPS[size]
        ref_text = f"{ref} fps" if isinstance(ref, int) else f"{ref[0]}-{ref[1]} fps"
        ref_top = ref if isinstance(ref, int) else ref[1]
        rows.append((f"every frame, {size} ({frames} frames)", f"{fps:.0f} fps", ref_text,
                     f"{fps / ref_top:.1f}x the reference's best"))
    with tempfile.TemporaryDirectory() as d:
        clip = Path(d) / "720p30.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=1280x720:rate=30", "-t", "60", "-c:v", "libx264",
                        "-preset", "veryfast", str(clip)], check=True)
        t = hyperfine(f"{pdqmatch} hash {clip}", runs=3)
        rows.append(("1 frame a second, 60 s of 720p 30 fps", f"{t:.2f} s",
                     "", f"{60 / t:.0f}x realtime, {os.cpu_count()} cores"))
    rss = max_rss_mb([str(pdqmatch), "hash", "--interval", "0",
                      str(VIDEOS / "test-padded-dimensions.mp4")])
    rows.append(("max RSS, every frame of 1080x1080", f"{rss:.0f} MB", "412 MB (default threads)", ""))

    header = ("what", "pdqmatch", "Meta vPDQ reference", "")
    w = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))
    print()
    print("Medians: hyperfine (runs after a warm-up); RSS: GNU time.  pdqmatch's frame")
    print("hashes are byte-identical with the reference's (tests/unit/test_video.c).")


if __name__ == "__main__":
    main()
