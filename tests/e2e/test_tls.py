"""pdqmatch serve --tls-cert --tls-key: HTTPS with a self-signed certificate
made by openssl for the test."""
import re
import signal
import subprocess

import requests

from helpers import BIN, run, drain


def test_https_with_a_self_signed_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    proc = subprocess.Popen([BIN, "serve", "--db", str(tmp_path / "s.db"), "--create", "--listen",
                             "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key)],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        drain(proc)
        m = re.search(r"tls=on .*listen=127\.0\.0\.1:(\d+)$", line.strip())
        assert m, line
        r = requests.get(f"https://127.0.0.1:{m.group(1)}/healthz", verify=str(cert), timeout=10)
        assert r.json() == {"status": "ok"}
        try:
            plain = requests.get(f"http://127.0.0.1:{m.group(1)}/healthz", timeout=10)
            assert plain.status_code != 200
        except requests.exceptions.ConnectionError:
            pass   # a TLS server may just hang up on plain HTTP
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_tls_options_go_together_and_bad_pem_is_refused(tmp_path):
    p = run("serve", "--db", tmp_path / "s.db", "--create", "--tls-cert", tmp_path / "x", timeout=30)
    assert p.returncode == 2
    assert "--tls-cert and --tls-key go together" in p.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    p = run("serve", "--db", tmp_path / "s.db", "--create", "--listen", "127.0.0.1:0",
            "--tls-cert", junk, "--tls-key", junk, timeout=30)
    assert p.returncode == 2
    assert p.stderr.startswith("pdqmatch: cannot serve TLS on 127.0.0.1:0: check the certificate")
