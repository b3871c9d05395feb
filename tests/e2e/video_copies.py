"""Transformed copies of the sample videos, made with ffmpeg: the clips,
re-timings, re-encodes, mirrors and compilations that re-uploads of known
video are (issue 14), and unrelated synthetic videos that must match
nothing.  tests/e2e/test_video_copies.py checks each at the defaults;
bench/bench_video.py prints the recall table.

make_copies(out_dir) -> [Copy], each with the file, what was done, and the
source(s) it must match with the query time ranges each appears at."""
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

VIDEOS = Path(__file__).resolve().parents[1] / "data" / "vpdq" / "videos"

# The known videos: name -> (path, seconds).
SOURCES = {
    "chair": (VIDEOS / "chair-orig-22-sd-bar.mp4", 22.43),
    "pattern": (VIDEOS / "pattern-longer-no-bar.mp4", 7.83),
    "doorknob": (VIDEOS / "doorknob-hd-no-bar.mp4", 4.0),
    "padded": (VIDEOS / "test-padded-dimensions.mp4", 5.0),
}

# Videos that are none of them.
SYNTHETIC = {
    "testsrc2": "testsrc2=size=640x360:rate=30",
    "mandelbrot": "mandelbrot=size=640x360:rate=30",
    "cellauto": "cellauto=size=640x360:rate=30:rule=110",
    "life": "life=size=640x360:rate=30:mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00",
}


@dataclass
class Copy:
    path: Path
    what: str                  # "clip-5s", "hflip", "concat", ...
    sources: dict = field(default_factory=dict)   # source name -> (query start, end) s
    needs: str = ""            # "": the defaults; "dihedral": --dihedral


def ffmpeg(*args):
    p = subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(map(str, args))}: {p.stderr}")


H264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-an"]


def make_copies(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    copies = []

    def one(name, what, args, spans, needs=""):
        path = out / f"{name}-{what}.mp4"
        ffmpeg(*args, *H264, path)
        copies.append(Copy(path, what, spans, needs))

    for name, (src, secs) in SOURCES.items():
        whole = {name: (0.0, secs)}
        for clip in (2, 5, 8):
            if clip + 1 >= secs:
                continue
            start = round((secs - clip) / 2, 2)
            one(name, f"clip-{clip}s", ["-ss", start, "-i", src, "-t", clip], {name: (0.0, clip)})
        one(name, "fps-29.97", ["-i", src, "-vf", "fps=30000/1001"], whole)
        one(name, "fps-15", ["-i", src, "-vf", "fps=15"], whole)
        # Irregular drops: frames 1 and 2 of every 5, and 7 of every 11, gone.
        one(name, "vfr", ["-i", src, "-vf",
                          "select='not(between(mod(n\\,5)\\,1\\,2))*not(eq(mod(n\\,11)\\,7))'",
                          "-fps_mode", "vfr"], whole)
        one(name, "crf-35", ["-i", src, "-crf", "35"], whole)
        one(name, "half", ["-i", src, "-vf", "scale=trunc(iw/4)*2:trunc(ih/4)*2"], whole)
        one(name, "hflip", ["-i", src, "-vf", "hflip"], whole, "dihedral")
        one(name, "transpose", ["-i", src, "-vf", "transpose=1"], whole, "dihedral")
        # Bars of 12.5 % of the height (letterbox) or width (pillarbox), in
        # black and in a flat grey.
        one(name, "letterbox", ["-i", src, "-vf",
                                "pad=iw:trunc(ih*1.125/2)*2:0:trunc(ih*0.0625):black"], whole)
        one(name, "pillarbox", ["-i", src, "-vf",
                                "pad=trunc(iw*1.25/2)*2:ih:trunc(iw*0.125):0:0x808080"], whole)
    # Compilations: the first seconds of one known video, then another's,
    # or then something unknown.
    pairs = [("chair", "pattern"), ("doorknob", "chair"), ("padded", "doorknob")]
    for a, b in pairs:
        la, lb = min(8.0, SOURCES[a][1]), min(8.0, SOURCES[b][1])
        path = out / f"concat-{a}-{b}.mp4"
        ffmpeg("-i", SOURCES[a][0], "-i", SOURCES[b][0], "-filter_complex",
               f"[0:v]trim=0:{la},setpts=PTS-STARTPTS,scale=640:360,setsar=1,fps=30[a];"
               f"[1:v]trim=0:{lb},setpts=PTS-STARTPTS,scale=640:360,setsar=1,fps=30[b];"
               "[a][b]concat=n=2:v=1:a=0[v]", "-map", "[v]", *H264, path)
        copies.append(Copy(path, "concat", {a: (0.0, la), b: (la, la + lb)}))
    for a, synth in (("pattern", "testsrc2"), ("chair", "mandelbrot")):
        la = min(8.0, SOURCES[a][1])
        path = out / f"concat-{a}-{synth}.mp4"
        ffmpeg("-i", SOURCES[a][0], "-f", "lavfi", "-i", SYNTHETIC[synth], "-filter_complex",
               f"[0:v]trim=0:{la},setpts=PTS-STARTPTS,scale=640:360,setsar=1,fps=30[a];"
               "[1:v]trim=0:12,setpts=PTS-STARTPTS,setsar=1[b];"
               "[a][b]concat=n=2:v=1:a=0[v]", "-map", "[v]", *H264, path)
        copies.append(Copy(path, "concat", {a: (0.0, la)}))
    for name, source in SYNTHETIC.items():
        path = out / f"synthetic-{name}.mp4"
        ffmpeg("-f", "lavfi", "-i", source, "-t", 8, *H264, path)
        copies.append(Copy(path, "synthetic", {}))
    return copies


def source_of(content_id):
    """The source name of a stored content id (its file name), or the id."""
    for name, (path, _) in SOURCES.items():
        if content_id == path.name:
            return name
    return content_id


def lookup(binary, db, path, *args):
    """The stored videos `pdqmatch lookup --json` reports for path: a dict
    source name -> its match object."""
    import json
    p = subprocess.run([str(binary), "lookup", "--db", str(db), "--json", *map(str, args),
                        str(path)], capture_output=True, text=True, timeout=600)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"pdqmatch lookup {path}: {p.stderr}")
    return {source_of(m["content_id"]): m for m in json.loads(p.stdout)["matches"]
            if m.get("kind") == "video"}


def index_sources(binary, db, *args):
    p = subprocess.run([str(binary), "index", "--db", str(db), "--bank", "known", *map(str, args),
                        *[str(p) for p, _ in SOURCES.values()]],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"pdqmatch index: {p.stderr}")


def judge(copy, found):
    """(found every source, matched nothing else)."""
    return set(copy.sources) <= set(found), set(found) <= set(copy.sources)


def stored_per_second(binary, db):
    """source name -> hashes stored a second of its video."""
    p = subprocess.run([str(binary), "export", "--db", str(db)], capture_output=True, text=True,
                       timeout=600)
    counts = defaultdict(int)
    for line in p.stdout.splitlines()[1:]:
        counts[source_of(line.split(",")[2])] += 1
    return {name: counts[name] / secs for name, (_, secs) in SOURCES.items()}
