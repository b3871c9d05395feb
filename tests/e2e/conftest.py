"""Shared fixtures: the helpers on the path, and a real pdqmatch serve on a
free loopback port over a store of samples/ in bank 'photos'."""
import os
import re
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import BIN, SAMPLES, drain, log_text, run  # noqa: E402

@pytest.fixture
def server(tmp_path):
    db = tmp_path / "s.db"
    assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    proc = subprocess.Popen([BIN, "serve", "--db", str(db), "--listen", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    drain(proc)
    m = re.search(r"listen=127\.0\.0\.1:(\d+)$", line.strip())
    assert m, line
    yield f"http://127.0.0.1:{m.group(1)}", proc, db
    if proc.poll() is None:
        # A clean stop, so that a sanitizer build reports any leak as a
        # failing exit status.
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=60) == 0, log_text(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
