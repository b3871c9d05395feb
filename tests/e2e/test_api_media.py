"""pdqmatch serve: the media routes (POST /v1/hash, /v1/lookup/media,
/v1/banks/NAME/media), raw and multipart bodies, and bad media."""
import requests

from helpers import BAD, SAMPLES, VIDEOS, ffmpeg, run

BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
JPEG = {"Content-Type": "image/jpeg"}
VIDEO = VIDEOS / "chair-19-sd-bar.mp4"


def test_hash_image_raw_and_multipart(server):
    url, proc, db = server
    data = (SAMPLES / "bridge.jpg").read_bytes()
    raw = requests.post(url + "/v1/hash", data=data, headers=JPEG, timeout=30).json()
    assert raw["type"] == "image"
    assert raw["pdq"] == {"hash": BRIDGE, "quality": 100}
    assert (raw["width"], raw["height"]) == (1600, 1004)
    assert raw["md5"] == "d35c785545392755e7e4164457657269"
    assert len(raw["dihedral"]) == 8 and raw["dihedral"][0] == BRIDGE
    form = requests.post(url + "/v1/hash", files={"file": ("b.jpg", data)}, timeout=30).json()
    assert form == raw


def test_hash_video_every_frame(server):
    url, proc, db = server
    r = requests.post(url + "/v1/hash", params={"interval": "0"}, data=VIDEO.read_bytes(),
                      headers={"Content-Type": "video/mp4"}, timeout=60).json()
    assert r["type"] == "video" and r["codec"] == "h264"
    assert len(r["frames"]) == 564
    assert [f["frame"] for f in r["frames"][:3]] == [0, 1, 2]
    assert r["frames"][0]["hash"] == \
        "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"


def test_lookup_media_image_with_exact_file_match(server):
    url, proc, db = server
    data = (SAMPLES / "bridge-rotate-90.jpg").read_bytes()
    r = requests.post(url + "/v1/lookup/media", params={"dihedral": "1"}, data=data,
                      headers=JPEG, timeout=30).json()
    found = {m["content_id"]: (m["distance"], m["orientation"]) for m in r["matches"]}
    assert found["bridge-rotate-90.jpg"] == (0, "orig")
    assert found["bridge.jpg"][1] == "rot270"
    assert r["file_matches"] == [{"bank": "photos", "content_id": "bridge-rotate-90.jpg",
                                  "sha256": True, "md5": True}]


def test_media_added_over_http_is_found_by_the_next_lookup(server):
    url, proc, db = server
    data = VIDEO.read_bytes()
    hdr = {"Content-Type": "video/mp4"}
    r = requests.post(url + "/v1/banks/photos/media", params={"content_id": "chair"},
                      data=data, headers=hdr, timeout=60)
    assert r.status_code == 201 and r.json()["outcome"] == "added"
    again = requests.post(url + "/v1/banks/photos/media", params={"content_id": "chair2"},
                          data=data, headers=hdr, timeout=60)
    assert (again.status_code, again.json()["outcome"]) == (200, "same_file")
    r = requests.post(url + "/v1/lookup/media", data=data, headers=hdr, timeout=60).json()
    assert r["type"] == "video" and "frames" not in r
    top = r["matches"][0]
    assert (top["content_id"], top["query_pct"], top["candidate_pct"]) == ("chair", 100, 100)
    assert top["segments"][0]["query_start"] == 0
    assert r["file_matches"][0]["content_id"] == "chair"
    assert run("verify", "--db", db).returncode == 0
    # One shape for a video match, here and in `pdqmatch lookup --json`
    # (the library builds both), with the rule that matched.
    # A sample a second of 3 frames: the first frame of each of the 19
    # samples matches (itself).
    assert top["rule"] == "percent"
    assert sum(f["distance"] == 0 for f in top["frame_matches"]) >= 19
    p = run("lookup", "--db", db, "--json", "--bank", "photos", VIDEO)
    cli = [m for m in __import__("json").loads(p.stdout)["matches"] if m["content_id"] == "chair"]
    assert cli == [top]
    bad = requests.post(url + "/v1/lookup/media", params={"min_segment": "x"}, data=data,
                        headers=hdr, timeout=60)
    assert bad.status_code == 400 and "min_segment" in bad.json()["error"]["message"]


def test_bad_media(server):
    url, proc, db = server
    before = requests.get(url + "/v1/stats", timeout=10).json()
    cases = [
        ("empty.jpg", 400, "invalid"),
        ("truncated.jpg", 400, "decode_failed"),
        ("truncated.png", 400, "decode_failed"),
        ("text.jpg", 415, "unsupported_media"),
        ("huge-header.png", 413, "too_large"),
    ]
    for name, status, code in cases:
        for path in ("/v1/hash", "/v1/lookup/media", "/v1/banks/photos/media?content_id=x"):
            r = requests.post(url + path, data=(BAD / name).read_bytes(), headers=JPEG,
                              timeout=30)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (name, path)
    r = requests.post(url + "/v1/hash", data=b"abc",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
    r = requests.post(url + "/v1/banks/nope/media", data=b"abc", headers=JPEG, timeout=30)
    assert r.status_code == 404
    r = requests.post(url + "/v1/banks/photos/media", params={"content_id": "../x"},
                      data=(SAMPLES / "bridge.jpg").read_bytes(), headers=JPEG, timeout=30)
    assert r.status_code == 400
    assert requests.get(url + "/v1/stats", timeout=10).json() == before
    assert proc.poll() is None


def test_a_mirrored_video_matches_over_http_under_dihedral(server, tmp_path):
    """Issue 14, point 3 over HTTP: POST /v1/lookup/media?dihedral=1 with a
    mirrored copy of a stored video finds it and names the orientation, as
    `pdqmatch lookup --dihedral --json` does."""
    url, proc, db = server
    hdr = {"Content-Type": "video/mp4"}
    r = requests.post(url + "/v1/banks/photos/media", params={"content_id": "chair"},
                      data=VIDEO.read_bytes(), headers=hdr, timeout=60)
    assert r.status_code == 201
    mirrored = tmp_path / "mirrored.mp4"
    ffmpeg("-i", VIDEO, "-vf", "hflip", "-c:v", "libx264", "-preset", "veryfast",
           "-pix_fmt", "yuv420p", mirrored)
    data = mirrored.read_bytes()
    plain = requests.post(url + "/v1/lookup/media", data=data, headers=hdr, timeout=60).json()
    assert plain["matches"] == []
    r = requests.post(url + "/v1/lookup/media", params={"dihedral": "1"}, data=data,
                      headers=hdr, timeout=60).json()
    assert [(m["content_id"], m["orientation"]) for m in r["matches"]] == [("chair", "flipy")]
    p = run("lookup", "--db", db, "--json", "--dihedral", "--bank", "photos", mirrored)
    assert __import__("json").loads(p.stdout)["matches"] == r["matches"]
