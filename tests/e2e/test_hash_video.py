"""pdqmatch hash on videos: vPDQ frame hashes, output forms, bad input."""
import json

import pytest

from helpers import VIDEOS, VPDQ, ffmpeg, max_rss_kb, run


@pytest.mark.parametrize("name", ["chair-19-sd-bar", "doorknob-hd-no-bar",
                                  "test-padded-dimensions"])
def test_every_frame_matches_the_reference(name):
    p = run("hash", "--interval", "0", VIDEOS / f"{name}.mp4")
    assert p.returncode == 0, p.stderr
    assert p.stdout == (VPDQ / "reference-outputs" / "full-default" / f"{name}.txt").read_text()


def test_one_frame_a_second_by_default():
    p = run("hash", VIDEOS / "doorknob-hd-no-bar.mp4")
    frames = [line.split(",") for line in p.stdout.splitlines()]
    assert [(f[0], f[3]) for f in frames] == [("0", "0.000"), ("30", "1.000"),
                                             ("60", "2.000"), ("90", "3.000")]
    ref = (VPDQ / "reference-outputs" / "full-default" / "doorknob-hd-no-bar.txt").read_text()
    ref = {line.split(",")[0]: line for line in ref.splitlines()}
    assert all(ref[f[0]] == ",".join(f) for f in frames)


def test_json():
    import hashlib
    path = VIDEOS / "test-padded-dimensions.mp4"
    p = run("hash", "--json", "--interval", "2", path)
    o = json.loads(p.stdout)
    data = path.read_bytes()
    assert (o["type"], o["width"], o["height"], o["fps"]) == ("video", 1080, 1080, 30.0)
    assert o["duration"] == 5.0
    assert o["sha256"] == hashlib.sha256(data).hexdigest()
    assert o["md5"] == hashlib.md5(data).hexdigest()
    assert [f["frame"] for f in o["frames"]] == [0, 60, 120]
    assert set(o["frames"][0]) == {"frame", "timestamp", "hash", "quality"}


def test_images_and_videos_together(tmp_path):
    # Told from the content: a video named .jpg is still a video.
    renamed = tmp_path / "clip.jpg"
    renamed.write_bytes((VIDEOS / "doorknob-hd-no-bar.mp4").read_bytes())
    p = run("hash", "--interval", "2", renamed, VPDQ.parent / "pdq" / "synthetic" / "tiny-5x5.png")
    lines = p.stdout.splitlines()
    assert p.returncode == 0
    assert [len(l.split(",")) for l in lines] == [4, 4, 3]


def bad(tmp_path, name):
    """The bad video fixtures, made on demand (ffmpeg, or from the samples)."""
    path = tmp_path / name
    sample = (VIDEOS / "doorknob-hd-no-bar.mp4").read_bytes()
    if name == "empty.mp4":
        path.write_bytes(b"")
    elif name == "truncated.mp4":
        path.write_bytes(sample[:len(sample) // 2])
    elif name == "random.mp4":
        import random
        path.write_bytes(random.Random(5).randbytes(200000))   # the same bytes every run
    elif name == "audio-only.mp4":
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", path)
    elif name == "huge-header.mkv":
        # A 300x300 raw video whose Matroska header is changed to 20000x20000.
        raw = tmp_path / "raw.mkv"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=300x300:rate=30", "-t", "0.1",
               "-c:v", "rawvideo", "-pix_fmt", "yuv420p", raw)
        data = bytearray(raw.read_bytes())
        for element in (0xB0, 0xBA):           # PixelWidth, PixelHeight
            at = data.find(bytes([element, 0x82, 0x01, 0x2C]))
            assert at > 0
            data[at + 2:at + 4] = (20000).to_bytes(2, "big")
        path.write_bytes(bytes(data))
    elif name == "long.mp4":
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "6", path)
    return path


@pytest.mark.parametrize("name,args,message", [
    ("empty.mp4", [], "empty file (0 bytes)"),
    ("truncated.mp4", [], "corrupt or truncated video data (Invalid data found when "
                          "processing input)"),
    ("audio-only.mp4", [], "no video stream in the file"),
    ("huge-header.mkv", [], "frames of 20000x20000 are over the limit of 35389440 pixels"),
    ("long.mp4", ["--max-duration", "5"], "6.0 seconds of video is over the limit of 5 seconds"),
    ("random.mp4", [], "not an image format pdqmatch reads (JPEG, PNG, GIF, WebP, TIFF, "
                       "PPM/PGM, HEIF/AVIF)"),
])
def test_bad_videos(tmp_path, name, args, message):
    path = bad(tmp_path, name)
    rc, stderr, rss = max_rss_kb("hash", "--interval", "0", *args, path)
    assert rc == 1
    assert stderr == f"pdqmatch: {path}: {message}\n"
    assert rss < 200 * 1024, f"{rss} KiB"


def test_memory_on_1080p_stays_small():
    rc, stderr, rss = max_rss_kb("hash", "--interval", "0", VIDEOS / "test-padded-dimensions.mp4")
    assert rc == 0, stderr
    assert rss < 150 * 1024, f"{rss} KiB"
