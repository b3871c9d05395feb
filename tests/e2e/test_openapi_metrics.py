"""pdqmatch serve: /openapi.json lists exactly the routes served, and
/metrics counts what happened."""
import re

import requests

BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"

# Every route the service promises, as the README documents them.
ROUTES = {
    ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/openapi.json"),
    ("get", "/v1/stats"), ("get", "/v1/whoami"), ("get", "/v1/lookup"), ("post", "/v1/lookup"), ("post", "/v1/hash"),
    ("post", "/v1/lookup/media"), ("get", "/v1/banks"), ("post", "/v1/banks"),
    ("get", "/v1/banks/{name}"), ("patch", "/v1/banks/{name}"), ("delete", "/v1/banks/{name}"),
    ("post", "/v1/banks/{name}/hashes"), ("post", "/v1/banks/{name}/media"),
    ("get", "/v1/banks/{name}/content"), ("get", "/v1/banks/{name}/content/{content_id}"),
    ("patch", "/v1/banks/{name}/content/{content_id}"),
    ("delete", "/v1/banks/{name}/content/{content_id}"),
    ("get", "/v1/exchanges"), ("get", "/v1/exchanges/{name}"),
    ("post", "/v1/exchanges/{name}/fetch"),
}
METHODS = ("get", "post", "patch", "delete", "put")


def test_openapi_lists_exactly_the_routes_served(server):
    url, proc, db = server
    doc = requests.get(url + "/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    listed = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert listed == ROUTES
    # Every listed route is served, and every other method on its path is
    # refused as not allowed (not as an unknown route).
    for path, item in doc["paths"].items():
        concrete = path.replace("{name}", "nope").replace("{content_id}", "x")
        for method in METHODS:
            r = requests.request(method, url + concrete, timeout=30,
                                 headers={"Content-Type": "application/json"}, data=b"{}")
            if method in item:
                assert r.status_code != 405 and r.json().get("error", {}).get(
                    "code") != "method_not_allowed", (method, path)
                assert "no route" not in r.text, (method, path)
            else:
                assert r.status_code == 405, (method, path, r.status_code)
    for path in ("/v1", "/v1/banks/a/b", "/v1/banks/a/content/", "/openapi"):
        assert requests.get(url + path, timeout=10).status_code == 404, path


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_metrics_count_requests_lookups_and_hashing(server):
    url, proc, db = server
    before = requests.get(url + "/metrics", timeout=10).text
    assert metric(before, "pdqmatch_store_hashes") == 5
    for _ in range(3):
        requests.get(url + "/v1/lookup", params={"hash": BRIDGE}, timeout=10)
    requests.get(url + "/v1/lookup", params={"hash": "zz"}, timeout=10)
    requests.post(url + "/v1/hash", data=b"not an image",
                  headers={"Content-Type": "image/png"}, timeout=10)
    r = requests.get(url + "/metrics", timeout=10)
    assert r.headers["Content-Type"].startswith("text/plain")
    t = r.text
    ok = '{route="GET /v1/lookup",status="200"}'
    assert metric(t, "pdqmatch_requests_total", ok) - metric(before, "pdqmatch_requests_total", ok) == 3
    assert metric(t, "pdqmatch_requests_total", '{route="GET /v1/lookup",status="400"}') == 1
    assert metric(t, "pdqmatch_requests_total", '{route="POST /v1/hash",status="415"}') == 1
    assert metric(t, "pdqmatch_lookups_total") - metric(before, "pdqmatch_lookups_total") == 3
    assert metric(t, "pdqmatch_matches_total") - metric(before, "pdqmatch_matches_total") == 6
    assert metric(t, "pdqmatch_hashing_seconds_count") >= 1
    count = metric(t, "pdqmatch_request_seconds_count", '{route="GET /v1/lookup"}')
    inf = metric(t, "pdqmatch_request_seconds_bucket", '{route="GET /v1/lookup",le="+Inf"}')
    assert count == inf >= 4
