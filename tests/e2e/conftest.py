"""Shared fixtures: the helpers on the path, and a real pdqmatch serve on a
free loopback port over a store of samples/ in bank 'photos'."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import SAMPLES, run, start_server, stop_server  # noqa: E402

@pytest.fixture
def server(tmp_path):
    db = tmp_path / "s.db"
    assert run("index", "--db", db, "--bank", "photos", SAMPLES).returncode == 0
    proc, url = start_server("--db", db, "--listen", "127.0.0.1:0")
    yield url, proc, db
    stop_server(proc)
