"""The demo: samples/ indexed as `make demo` does, and every curl example it
prints (samples/demo-curl.sh) succeeds against a real server."""
import re
import signal
import subprocess

from helpers import BIN, ROOT, run, drain


def test_demo_curl_examples_work_as_printed(tmp_path):
    db = tmp_path / "demo.db"
    samples = ROOT / "samples"
    assert run("index", "--db", db, "--bank", "samples", samples).returncode == 0
    assert run("index", "--db", db, "--bank", "partner", "--hash-list",
               samples / "partner-hashes.csv").returncode == 0
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        m = re.search(r"listen=127\.0\.0\.1:(\d+)$", proc.stderr.readline().strip())
        drain(proc)
        assert m
        out = subprocess.run(["sh", "samples/demo-curl.sh"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300,
                             env={"PATH": "/usr/bin:/bin",
                                  "PDQMATCH_URL": f"http://127.0.0.1:{m.group(1)}"})
        assert out.returncode == 0, out.stdout + out.stderr
        text = out.stdout
        assert text.count("$ curl") == 12
        assert '"content_id":"partner-0001"' in text          # street.jpg, 5 bits away
        assert '"content_id":"videos/chair-orig-22-sd-bar.mp4"' in text
        assert '"orientation":"rot270"' in text                # the rotated bridge
        assert '"deleted":true' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
