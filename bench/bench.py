#!/usr/bin/env python3
"""make bench: pdqmatch's figures beside the peers', in one table.

Timings of whole commands come from hyperfine (median of repeated runs after
warm-up); the hashing step alone comes from bench_pdq, which times the PDQ
core in-process.  The peers' figures are quoted from measurements of Meta's
reference pdq-photo-hasher on this class of machine (bench/reference-timing.txt);
the reference is not built here.

usage: bench/bench.py BUILD_DIR
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PDQ = ROOT / "tests" / "data" / "pdq"
IMAGES = PDQ / "images"

# Meta's reference (bench/reference-timing.txt): pdq-photo-hasher over the
# 49 public images, median of 4 runs; hashing step alone, 7-8 ms an image.
REF_HASH_49_S = 5.05
REF_STEP_MS = (7.5, 8.1)


def public_images():
    lines = (PDQ / "public-pdq.tsv").read_text().splitlines()[1:]
    return [line.split("\t")[0] for line in lines]


def hyperfine(commands, runs=10, warmup=2, cwd=IMAGES, env=None, no_shell=False,
              failing=False):
    """Median seconds of each command, run from cwd: shell command lines,
    or with no_shell argv lists run without a shell (hyperfine -N);
    failing: the commands exit non-zero on purpose (a usage message)."""
    if no_shell:
        commands = [" ".join(map(str, c)) for c in commands]
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        p = subprocess.run(["hyperfine", "--style", "none", "--warmup", str(warmup),
                            "--runs", str(runs), "--export-json", out.name]
                           + (["-N"] if no_shell else []) + (["-i"] if failing else [])
                           + list(commands),
                           cwd=cwd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"bench: hyperfine failed:\n{p.stderr}")
        results = json.load(open(out.name))["results"]
    return [r["median"] for r in results]


def main():
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
    pdqmatch = build / "pdqmatch"
    files = public_images()
    names = " ".join(files)
    cores = os.cpu_count()

    step = subprocess.run([build / "bench_pdq", IMAGES / "bridge-mods/square-512x512.jpg"],
                          capture_output=True, text=True, check=True).stdout
    step_ms = float(re.search(r"pdq hash 512x512 median_ms=([0-9.]+)", step).group(1))
    dih_ms = float(re.search(r"hash\+dihedral 512x512 median_ms=([0-9.]+)", step).group(1))

    floor = subprocess.run([build / "bench_pdq", "--decode-floor", *files], cwd=IMAGES,
                           capture_output=True, text=True, check=True).stdout
    floor_s = float(re.search(r"decode_floor_s=([0-9.]+)", floor).group(1))

    tmp = tempfile.mkdtemp(prefix="pdqm-bench-")
    all_cores, one_thread, vips_seq = hyperfine([
        f"{pdqmatch} hash {names}",
        f"{pdqmatch} hash --threads 1 {names}",
        f"for f in {names}; do vips copy $f {tmp}/x.v; done",
    ])
    os.system(f"rm -rf {tmp}")

    rows = [
        ("hashing step: 512x512 decoded pixels -> hash",
         f"{step_ms:.2f} ms", f"{REF_STEP_MS[0]:.1f}-{REF_STEP_MS[1]:.1f} ms",
         f"{REF_STEP_MS[0] / step_ms:.0f}x faster"),
        ("hashing step with all 8 dihedral hashes",
         f"{dih_ms:.2f} ms", "", ""),
        (f"pdqmatch hash, 49 public images, {cores} cores",
         f"{all_cores:.2f} s", f"{REF_HASH_49_S:.2f} s",
         f"{REF_HASH_49_S / all_cores:.1f}x faster"),
        ("pdqmatch hash --threads 1, same images",
         f"{one_thread:.2f} s", f"{REF_HASH_49_S:.2f} s",
         f"{REF_HASH_49_S / one_thread:.1f}x faster"),
        ("vips copy F x.v, same images, one by one",
         f"{vips_seq:.2f} s", "", f"pdqmatch hash / vips copy = {all_cores / vips_seq:.2f}"),
        ("libvips full decode in-process, one thread",
         f"{floor_s:.2f} s", "", f"pdqmatch --threads 1 / floor = {one_thread / floor_s:.2f}"),
    ]
    header = ("what", "pdqmatch", "Meta reference", "")
    w = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))
    print()
    print("Medians: hyperfine (10 runs after 2 warm-ups) for whole commands;")
    print("bench_pdq (21 batches) for the hashing step.  Reference figures:")
    print("bench/reference-timing.txt.")


if __name__ == "__main__":
    main()
