"""The web console (issue 20), in a real browser: Debian's chromium, headless,
driven through chromedriver by selenium, against a real `pdqmatch serve
--console` on 127.0.0.1 with API keys.

Every page is photographed at 1280 and 390 px into build/console-shots/
for people to look at."""
import base64
import http.client
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from exchange_standin import CREDENTIALS, start as start_standin
from helpers import DATA, ROOT, ffmpeg, random_hashes, run, start_server, stop_server
from natsrig import Nats, Node, ready, wait_applied

SAMPLES = ROOT / "samples"
VIDEO = SAMPLES / "videos" / "chair-orig-22-sd-bar.mp4"
SHOTS = ROOT / "build" / "console-shots"
WIDTHS = (1280, 390)

KEYS = {"admin": "console-admin-key-0123456789", "write": "console-write-key-0123456789",
        "read": "console-read-key-0123456789"}

# Hostile text as a content id or metadata would carry it.
PAYLOAD_IMG = '<img src=x onerror="window.__pwned=1">'
PAYLOAD_SCRIPT = '</script><script>window.__pwned=2</script>'
PAYLOAD_JS_URL = 'javascript:window.__pwned=3//'
PAYLOAD_BIG = "<b>" + "A" * 10240 + "</b>"


# -- the server, the browser ----------------------------------------------

def call(method, url, body=None, key=None, ctype="application/json"):
    headers = {}
    if key:
        headers["Authorization"] = "Bearer " + key
    if body is not None:
        headers["Content-Type"] = ctype
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def serve(db, tmp_path, *extra, keys=True):
    if keys:
        path = tmp_path / "keys"
        path.write_text("".join("%s %s %s-key\n" % (k, role, role) for role, k in KEYS.items()))
        os.chmod(path, 0o600)
        extra = ("--api-keys", path) + extra
    return start_server("--db", db, "--create", "--listen", "127.0.0.1:0", *extra)


@pytest.fixture(scope="module")
def standin():
    httpd = start_standin()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def console(tmp_path_factory, standin):
    """A server with --console and keys, over a store fed by one exchange
    (the NCMEC stand-in) that it fetches in the background."""
    tmp = tmp_path_factory.mktemp("console")
    db = tmp / "c.db"
    urllib.request.urlopen(urllib.request.Request(
        standin + "/_control/load", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"api": "ncmec", "file": str(DATA / "exchanges" / "ncmec.json"),
                         "phase": 0}).encode()), timeout=10).read()
    creds = tmp / "creds.json"
    creds.write_text(json.dumps(CREDENTIALS["ncmec"]))
    os.chmod(creds, 0o600)
    r = run("exchange", "add", "ncmec-feed", "--db", db, "--type", "ncmec", "--bank", "NCMEC",
            "--credentials", creds, "--base-url", standin + "/ncmec")
    assert r.returncode == 0, r.stderr
    proc, url = serve(db, tmp, "--console", "--fetch-interval", "3600")
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="pdqm-chromium-")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-default-apps", "--user-data-dir=" + profile,
              "--window-size=1280,900"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_script_timeout(30)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(d, cond, timeout=30, what="the page"):
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.05).until(lambda _: cond())
    except TimeoutException:
        raise AssertionError("waited %d s for %s; the page says: %s" %
                             (timeout, what, d.find_element(By.TAG_NAME, "body").text[:2000]))


def css(d, sel):
    return d.find_elements(By.CSS_SELECTOR, sel)


def page_done(d, page):
    """The route's view has finished loading."""
    wait(d, lambda: d.execute_script(
        "const m = document.getElementById('main');"
        "return m.getAttribute('data-page') === arguments[0] && "
        "!m.querySelector('[aria-busy]')", page), what="page " + page)


def go(d, url, route, page):
    d.execute_script("document.getElementById('main').removeAttribute('data-page')")
    if d.current_url == url + "/console/" + route:
        d.refresh()
    elif d.current_url.startswith(url + "/console/"):
        d.execute_script("location.hash = arguments[0]", route)
    else:
        d.get(url + "/console/" + route)
    page_done(d, page)


def shot(d, name):
    """The whole page at both widths.  At each, the page must fit its width:
    nothing but a wide table's own box scrolls sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for w in WIDTHS:
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": w, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(0.15)
        wide = d.execute_script("return document.documentElement.scrollWidth - "
                                "document.documentElement.clientWidth")
        assert wide <= 0, "%s at %d px is %d px too wide" % (name, w, wide)
        h = d.execute_script("return document.documentElement.scrollHeight")
        png = d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": w, "height": min(h, 8000), "scale": 1}})
        (SHOTS / ("%s-%d.png" % (name, w))).write_bytes(base64.b64decode(png["data"]))
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def sign_in(d, url, role):
    d.get(url + "/console/#/banks")
    d.execute_script("sessionStorage.clear()")
    d.refresh()
    key = wait(d, lambda: (css(d, "form.signin input[type=password]") or [None])[0],
               what="the sign-in form")
    # By keyboard: the key field has the focus; Enter signs in.
    wait(d, lambda: d.switch_to.active_element == key, what="the key field to have the focus")
    keys(d, KEYS[role] + Keys.ENTER)
    page_done(d, "banks")
    assert d.find_element(By.CSS_SELECTOR, "#who .role").get_attribute("data-role") == role
    # The key lives in the tab's session storage, never in a cookie.
    assert d.execute_script("return sessionStorage.getItem('pdqmatch.key')") == KEYS[role]
    assert d.get_cookies() == []


def keys(d, text):
    """Type as a keyboard does: into whatever has the focus."""
    ActionChains(d).send_keys(text).perform()


def js_errors(d):
    """The browser's console errors since the last call (a script error in
    the console itself fails the test)."""
    return [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE" and
            # Refusals the console shows: before sign-in it asks who it is
            # and hears 401; the test's file that is not media gets 415.
            not re.search(r"(/v1/whoami - Failed to load resource: .* 401|"
                          r"/v1/(lookup|banks/known)/media\?.* - Failed to load resource: "
                          r".* 415)", e["message"])]


def fraction(d, bar):
    """Where a timeline bar starts and ends, as fractions of its lane's
    axis, from the positions the browser laid out."""
    return d.execute_script(
        "const b = arguments[0].getBoundingClientRect();"
        "const a = arguments[0].parentNode.querySelector('rect.axis').getBoundingClientRect();"
        "return [(b.left - a.left) / a.width, (b.right - a.left) / a.width];", bar)


# -- the server's side ------------------------------------------------------

def test_console_files_and_headers(console, tmp_path):
    st, h, body = call("GET", console + "/console/")
    assert st == 200 and h["Content-Type"].startswith("text/html"), h
    csp = h["Content-Security-Policy"]
    for part in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'",
                 "object-src 'none'", "require-trusted-types-for 'script'"):
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
    # No inline script or style in the page: scripts come from files.
    html = body.decode()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="app.js" defer>']
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html, re.I)
    for name, ctype in (("app.js", "text/javascript"), ("app.css", "text/css"),
                        ("icon.svg", "image/svg+xml")):
        st, h, body = call("GET", console + "/console/" + name)
        assert st == 200 and h["Content-Type"].startswith(ctype) and body, name
        assert h["Content-Security-Policy"] == csp
    c = http.client.HTTPConnection(console[len("http://"):], timeout=10)
    c.request("GET", "/console")
    r = c.getresponse()
    assert r.status == 308 and r.getheader("Location") == "/console/"
    c.close()
    st, h, body = call("GET", console + "/console/nope.js")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"
    # The API's own replies run nothing if opened in a browser.
    st, h, _ = call("GET", console + "/v1/banks", key=KEYS["read"])
    assert st == 200 and h["X-Content-Type-Options"] == "nosniff"
    assert h["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    # Who a key is.
    for role, key in KEYS.items():
        st, _, body = call("GET", console + "/v1/whoami", key=key)
        assert st == 200 and json.loads(body) == {"auth": True, "key": role + "-key", "role": role}
    st, _, _ = call("GET", console + "/v1/whoami")
    assert st == 401
    # Without --console there is no console.
    proc, url = serve(tmp_path / "plain.db", tmp_path)
    try:
        st, _, _ = call("GET", url + "/console/")
        assert st == 404
    finally:
        stop_server(proc)


def test_console_without_keys_needs_no_sign_in(browser, tmp_path):
    """A loopback server without keys: the console opens on the banks, and
    every control is there (every caller may do everything)."""
    d = browser
    proc, url = serve(tmp_path / "open.db", tmp_path, "--console", keys=False)
    try:
        assert json.loads(call("GET", url + "/v1/whoami")[2]) == {
            "auth": False, "key": None, "role": "admin"}
        d.get(url + "/console/")
        page_done(d, "banks")
        assert css(d, "form.signin") == []
        assert d.find_element(By.CSS_SELECTOR, "#who .role").text == "no keys · admin"
        assert [e.get_attribute("data-needs") for e in css(d, "[data-needs]")] == ["admin"]
        assert js_errors(d) == []
    finally:
        stop_server(proc)


# -- an analyst's day ---------------------------------------------------------

def clip_with_lead_in(tmp_path):
    """A query video: 3 s of a test pattern, then seconds 8 to 14 of the
    sample video: its match is at 3..9 s of the upload and 8..14 s of the
    known video."""
    out = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=480x720:rate=30:duration=3", "-ss", "8", "-t", "6",
           "-i", VIDEO, "-filter_complex",
           "[1:v]scale=480:720,setsar=1,fps=30[c];[0:v]setsar=1[t];[t][c]concat=n=2:v=1:a=0[v]",
           "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", out)
    return out


def test_console_analyst_flow(console, browser, tmp_path):
    d = browser
    d.get(console + "/console/#/banks")
    d.execute_script("sessionStorage.clear()")
    d.refresh()
    wait(d, lambda: css(d, "form.signin"), what="the sign-in form")
    js_errors(d)
    assert not d.find_element(By.ID, "nav").is_displayed()
    shot(d, "signin")
    sign_in(d, console, "admin")

    # Create a bank through the form.
    form = d.find_element(By.CSS_SELECTOR, "[data-needs=admin] form")
    form.find_element(By.CSS_SELECTOR, "input:not([type])").send_keys("known")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page_done(d, "bank")
    assert "Bank known" in d.find_element(By.TAG_NAME, "h1").text

    # Upload the sample images and a video into it.
    images = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".jpg", ".png"))
    assert len(images) >= 5
    files = images + [VIDEO]
    d.find_element(By.CSS_SELECTOR, "[data-needs=write] input[type=file]").send_keys(
        "\n".join(str(f) for f in files))
    d.find_element(By.CSS_SELECTOR, "[data-needs=write] button[type=submit]").click()
    wait(d, lambda: len(css(d, ".uploads li[data-outcome]")) == len(files), timeout=120,
         what="the uploads")
    outcomes = {li.text.split(":")[0]: li.get_attribute("data-outcome")
                for li in css(d, ".uploads li")}
    assert outcomes == {f.name: "added" for f in files}, outcomes
    # One that is not media is refused with the server's reason; nothing
    # is stored.
    bad = DATA / "bad" / "text.jpg"
    st, _, body = call("POST", console + "/v1/banks/known/media?content_id=text.jpg",
                       bad.read_bytes(), key=KEYS["write"], ctype="image/jpeg")
    assert st == 415, body
    d.find_element(By.CSS_SELECTOR, "[data-needs=write] input[type=file]").send_keys(str(bad))
    d.find_element(By.CSS_SELECTOR, "[data-needs=write] button[type=submit]").click()
    wait(d, lambda: [(li.text, li.get_attribute("data-outcome")) for li in css(d, ".uploads li")]
         == [("text.jpg: %s (415)" % json.loads(body)["error"]["message"], "error")],
         what="the refused upload")
    go(d, console, "#/bank/known", "bank")
    ids = [a.text for a in css(d, "table.items td:first-child a")]
    assert sorted(ids) == sorted(f.name for f in files)
    shot(d, "bank")
    st, _, body = call("GET", console + "/v1/banks/known", key=KEYS["read"])
    assert json.loads(body)["contents"] == len(files)

    # One item: its hashes, metadata and provenance.
    d.find_element(By.LINK_TEXT, VIDEO.name).click()
    page_done(d, "item")
    assert d.find_element(By.CSS_SELECTOR, "[data-field=content_id]").text == VIDEO.name
    assert len(css(d, "table.hashes tbody tr")) > 100
    assert "no exchange" in d.find_element(By.TAG_NAME, "main").text
    shot(d, "item")

    # Change the bank's threshold.
    go(d, console, "#/bank/known", "bank")
    change = d.find_elements(By.CSS_SELECTOR, "[data-needs=admin] form")[0]
    t = change.find_element(By.CSS_SELECTOR, "input[type=number]")
    t.clear()
    t.send_keys("30")
    change.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(d, lambda: json.loads(call("GET", console + "/v1/banks/known",
                                    key=KEYS["read"])[2])["threshold"] == 30,
         what="the new threshold")

    # A rotated image, looked up under dihedral: the orientation shows.
    go(d, console, "#/lookup", "lookup")
    assert d.find_element(By.CSS_SELECTOR, ".drop input[type=checkbox], input[type=checkbox]").is_selected()
    d.find_element(By.CSS_SELECTOR, ".drop input[type=file]").send_keys(
        str(SAMPLES / "bridge-rotate-90.jpg"))
    wait(d, lambda: css(d, ".result[data-type=image]"), timeout=60, what="the image result")
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in css(d, "table.matches tbody tr")]
    bridge = [r for r in rows if r[3] == "bridge.jpg"]
    assert bridge and bridge[0][4] == "rot270" and bridge[0][1] == "known", rows
    assert int(bridge[0][0]) <= 31 and bridge[0][5] == "no"
    pdq = d.find_element(By.CSS_SELECTOR, ".result .facts code").text
    assert re.fullmatch(r"[0-9a-f]{64}", pdq)
    shot(d, "lookup-image")

    # A clip: its segment sits where it is, on both axes of the timeline.
    clip = clip_with_lead_in(tmp_path)
    d.find_element(By.CSS_SELECTOR, ".drop input[type=file]").send_keys(str(clip))
    wait(d, lambda: css(d, ".result[data-type=video]"), timeout=120, what="the video result")
    match = d.find_element(By.CSS_SELECTOR, ".match[data-content-id='%s']" % VIDEO.name)
    assert match.find_element(By.CSS_SELECTOR, "[data-field=rule]").text.startswith(
        ("percent rule", "segment rule"))
    assert "% of the upload" in match.find_element(By.CSS_SELECTOR, "[data-field=query_pct]").text
    up = match.find_elements(By.CSS_SELECTOR, "g.upload rect.seg")
    kn = match.find_elements(By.CSS_SELECTOR, "g.known rect.seg")
    assert up and len(up) == len(kn)
    up_d = float(match.find_element(By.CSS_SELECTOR, "g.upload").get_attribute("data-duration"))
    kn_d = float(match.find_element(By.CSS_SELECTOR, "g.known").get_attribute("data-duration"))
    assert abs(up_d - 9.0) < 0.2 and abs(kn_d - 22.4) < 0.5, (up_d, kn_d)
    # The longest segment: the clip's 6 s.
    longest = max(range(len(up)), key=lambda i: fraction(d, up[i])[1] - fraction(d, up[i])[0])
    a, b = fraction(d, up[longest])
    assert abs(a - 3 / up_d) < 0.06 and abs(b - 9 / up_d) < 0.06, (a, b)
    a, b = fraction(d, kn[longest])
    assert abs(a - 8 / kn_d) < 0.04 and abs(b - 14 / kn_d) < 0.06, (a, b)
    shot(d, "lookup-video")

    # A file that is not media: the server's own error, word for word.
    bad = DATA / "bad" / "text.jpg"
    st, _, body = call("POST", console + "/v1/lookup/media?dihedral=1", bad.read_bytes(),
                       key=KEYS["read"], ctype="image/jpeg")
    assert st == 415, body
    want = "text.jpg: %s (415)" % json.loads(body)["error"]["message"]
    d.find_element(By.CSS_SELECTOR, ".drop input[type=file]").send_keys(str(bad))
    wait(d, lambda: [e.text for e in css(d, ".results .problem")] == [want], what=want)

    # By hash: the bridge's own hash is found at distance 0.
    r = run("hash", SAMPLES / "bridge.jpg")
    h = r.stdout.split(",")[0]
    go(d, console, "#/lookup", "lookup")
    d.find_element(By.CSS_SELECTOR, "input[pattern]").send_keys(h + Keys.ENTER)
    wait(d, lambda: css(d, ".result[data-type=hash]"), what="the hash result")
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in css(d, "table.matches tbody tr")]
    assert ["0", "known"] == rows[0][:2] and rows[0][3] == "bridge.jpg", rows

    # Exchanges: the background fetch's result; start one.
    deadline = time.time() + 30
    while time.time() < deadline:
        x = json.loads(call("GET", console + "/v1/exchanges", key=KEYS["read"])[2])
        if x["exchanges"][0]["last_fetch"]:
            break
        time.sleep(0.2)
    go(d, console, "#/exchanges", "exchanges")
    row = [td.text for td in css(d, "table.exchanges tbody tr")[0].find_elements(By.TAG_NAME, "td")]
    assert row[0] == "ncmec-feed" and row[2] == "NCMEC" and row[4] == "success", row
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row[3]), row
    shot(d, "exchanges")
    d.find_element(By.XPATH, "//button[text()='Fetch now']").click()
    wait(d, lambda: "Fetch of ncmec-feed started" in d.find_element(By.ID, "toast").text,
         what="the fetch to start")

    # An exchange's item shows where it came from.
    go(d, console, "#/bank/NCMEC", "bank")
    d.find_element(By.CSS_SELECTOR, "table.items td:first-child a").click()
    page_done(d, "item")
    text = d.find_element(By.TAG_NAME, "main").text
    assert "ncmec-feed" in text and "Exchange" in text
    shot(d, "item-exchange")

    # The service.
    go(d, console, "#/service", "service")
    st = json.loads(call("GET", console + "/v1/stats", key=KEYS["read"])[2])
    facts = dict(zip([e.text for e in css(d, ".facts dt")], [e.text for e in css(d, ".facts dd")]))
    assert facts["Hashes"] == "{:,}".format(st["hashes"]) and facts["Writable"] == "yes", facts
    assert facts["Cluster"] == "a single node"
    shot(d, "service")

    # Delete an item, then a bank, each after a confirmation.
    go(d, console, "#/item/known/street.jpg", "item")
    d.find_element(By.XPATH, "//button[text()='Delete item…']").click()
    confirm = d.switch_to.active_element
    assert confirm.text == "Delete item"
    keys(d, Keys.ENTER)
    page_done(d, "bank")
    st, _, _ = call("GET", console + "/v1/banks/known/content/street.jpg", key=KEYS["read"])
    assert st == 404
    call("POST", console + "/v1/banks", {"name": "scratch"}, key=KEYS["admin"])
    go(d, console, "#/bank/scratch", "bank")
    d.find_element(By.XPATH, "//button[text()='Delete bank…']").click()
    # Escape backs out; nothing is deleted.
    keys(d, Keys.ESCAPE)
    wait(d, lambda: d.switch_to.active_element.text == "Delete bank…", what="the focus back")
    assert call("GET", console + "/v1/banks/scratch", key=KEYS["read"])[0] == 200
    d.find_element(By.XPATH, "//button[text()='Delete bank…']").click()
    d.switch_to.active_element.click()
    page_done(d, "banks")
    assert call("GET", console + "/v1/banks/scratch", key=KEYS["read"])[0] == 404
    shot(d, "banks")
    assert js_errors(d) == []


def test_console_pages_through_2500_items(console, browser):
    d = browser
    call("POST", console + "/v1/banks", {"name": "big"}, key=KEYS["admin"])
    items = [{"hash": h, "content_id": "item-%04d" % i}
             for i, h in enumerate(random_hashes(2500, 20))]
    st, _, body = call("POST", console + "/v1/banks/big/hashes", {"items": items},
                       key=KEYS["write"])
    assert st in (200, 201), body
    sign_in(d, console, "read")
    go(d, console, "#/bank/big", "bank")
    seen = []
    pages = 0
    while True:
        expect = "items {:,}–{:,}".format(len(seen) + 1, min(len(seen) + 100, 2500))
        wait(d, lambda: [e.text for e in css(d, ".pageinfo")] == [expect], what=expect)
        seen += [a.text for a in css(d, "table.items td:first-child a")]
        pages += 1
        nxt = d.find_element(By.XPATH, "//button[text()='Next ›']")
        if nxt.get_attribute("disabled") is not None:
            break
        nxt.click()
    assert pages == 25 and seen == ["item-%04d" % i for i in range(2500)]
    # Back one page, then to the first; 500 a page is 5 pages.
    d.find_element(By.XPATH, "//button[text()='‹ Previous']").click()
    wait(d, lambda: css(d, ".pageinfo")[0].text == "items 2,301–2,400", what="the page before")
    d.find_element(By.XPATH, "//button[text()='First page']").click()
    wait(d, lambda: css(d, ".pageinfo")[0].text == "items 1–100", what="the first page")
    Select(d.find_element(By.CSS_SELECTOR, ".pager select")).select_by_value("500")
    wait(d, lambda: css(d, ".pageinfo")[0].text == "items 1–500", what="500 a page")
    assert len(css(d, "table.items tbody tr")) == 500
    assert js_errors(d) == []


def test_console_service_page_of_a_cluster_node(browser, tmp_path):
    """A node of a cluster (one NATS server): the service page shows the
    sequence it applied, the log's last and the lag."""
    d = browser
    nats = Nats(tmp_path, n=1)
    node = None
    try:
        node = Node(tmp_path / "n.db", nats.urls, "--console")
        assert requests.post(node.url + "/v1/banks", json={"name": "c"}, timeout=10).status_code == 201
        r = requests.post(node.url + "/v1/banks/c/hashes", timeout=10,
                          json={"items": [{"hash": random_hashes(1, 3)[0], "content_id": "x"}]})
        assert r.status_code == 200, r.text
        wait_applied([node], r.json()["seq"])
        seq = ready(node)["last_seq"]
        d.get(node.url + "/console/#/service")
        page_done(d, "service")
        facts = dict(zip([e.text for e in css(d, ".facts dt")],
                         [e.text for e in css(d, ".facts dd")]))
        assert facts["Cluster: applied"] == "{:,}".format(seq), facts
        assert facts["Cluster: last in the log"] == "{:,}".format(seq)
        assert facts["Cluster: behind"].startswith("0 entries")
        assert facts["Cluster: connected"] == "yes" and facts["Writable"] == "yes"
        shot(d, "service-cluster")
        assert js_errors(d) == []
    finally:
        if node:
            node.stop()
        nats.stop()


# -- roles ----------------------------------------------------------------

def test_console_read_key_sees_no_write_or_admin_controls(console, browser):
    d = browser
    call("POST", console + "/v1/banks", {"name": "roles"}, key=KEYS["admin"])
    call("POST", console + "/v1/banks/roles/hashes",
         {"items": [{"hash": random_hashes(1, 7)[0], "content_id": "one"}]}, key=KEYS["write"])
    for role in ("read", "write"):
        sign_in(d, console, role)
        seen = {}
        for route, page in (("#/banks", "banks"), ("#/bank/roles", "bank"),
                            ("#/item/roles/one", "item"), ("#/exchanges", "exchanges"),
                            ("#/lookup", "lookup"), ("#/service", "service")):
            go(d, console, route, page)
            seen[page] = {
                "needs": sorted(e.get_attribute("data-needs") for e in css(d, "[data-needs]")),
                "buttons": sorted(b.text for b in css(d, "main button") if b.text),
                "uploads": len(css(d, "main [data-needs] input[type=file]")),
            }
        assert seen["banks"]["needs"] == [] and "Create bank" not in seen["banks"]["buttons"]
        assert "admin" not in seen["bank"]["needs"]
        assert not {"Delete bank…", "Save"} & set(seen["bank"]["buttons"])
        assert seen["exchanges"]["needs"] == []
        if role == "read":
            for page, s in seen.items():
                assert s["needs"] == [] and s["uploads"] == 0, (page, s)
                assert not {"Upload", "Delete item…", "Fetch now"} & set(s["buttons"]), (page, s)
            go(d, console, "#/bank/roles", "bank")
            shot(d, "bank-read-key")
        else:
            assert seen["bank"]["needs"] == ["write"] and seen["item"]["needs"] == ["write"]
    # The API refuses them anyway.
    key = KEYS["read"]
    assert call("POST", console + "/v1/banks", {"name": "nope"}, key=key)[0] == 403
    assert call("PATCH", console + "/v1/banks/roles", {"threshold": 5}, key=key)[0] == 403
    assert call("DELETE", console + "/v1/banks/roles", key=key)[0] == 403
    assert call("DELETE", console + "/v1/banks/roles/content/one", key=key)[0] == 403
    assert call("POST", console + "/v1/banks/roles/media?content_id=x",
                (SAMPLES / "street.jpg").read_bytes(), key=key, ctype="image/jpeg")[0] == 403
    assert call("POST", console + "/v1/exchanges/ncmec-feed/fetch", key=key)[0] == 403
    key = KEYS["write"]
    assert call("DELETE", console + "/v1/banks/roles", key=key)[0] == 403
    assert call("POST", console + "/v1/exchanges/ncmec-feed/fetch", key=key)[0] == 403
    assert js_errors(d) == []


# -- hostile content --------------------------------------------------------

def test_console_shows_hostile_content_as_text(console, browser):
    d = browser
    call("POST", console + "/v1/banks", {"name": "hostile"}, key=KEYS["admin"])
    hashes = random_hashes(4, 99)
    long_id = "L" * 480 + PAYLOAD_IMG[:20]
    meta = {"img": PAYLOAD_IMG, "script": PAYLOAD_SCRIPT, "url": PAYLOAD_JS_URL,
            "big": PAYLOAD_BIG, PAYLOAD_IMG: [PAYLOAD_SCRIPT]}
    ids = [PAYLOAD_IMG, PAYLOAD_SCRIPT, PAYLOAD_JS_URL, long_id]
    items = [{"hash": h, "content_id": i, "metadata": meta} for h, i in zip(hashes, ids)]
    st, _, body = call("POST", console + "/v1/banks/hostile/hashes", {"items": items},
                       key=KEYS["write"])
    assert st in (200, 201), body
    sign_in(d, console, "admin")
    # Record every policy violation from now on (the app stays loaded: the
    # routes change the fragment only).
    d.execute_script("window.__violations = [];"
                     "document.addEventListener('securitypolicyviolation', e =>"
                     " window.__violations.push(e.violatedDirective));")

    def nothing_ran():
        assert d.execute_script("return window.__pwned") is None
        try:
            alert = d.switch_to.alert
            raise AssertionError("an alert opened: " + alert.text)
        except NoAlertPresentException:
            pass
        assert css(d, "img[src=x]") == [] and css(d, "main script") == []
        assert css(d, "b") == [], "markup from the store became elements"
        for a in css(d, "a[href]"):
            assert a.get_attribute("href").startswith(console + "/console/#/"), a.get_attribute("href")
        assert d.execute_script("return window.__violations") == []

    go(d, console, "#/bank/hostile", "bank")
    shown = [a.text for a in css(d, "table.items td:first-child a")]
    assert sorted(shown) == sorted(ids), shown
    nothing_ran()
    shot(d, "bank-hostile")
    for i, cid in enumerate(ids):
        if i == 0:
            css(d, "table.items td:first-child a")[shown.index(cid)].click()
            page_done(d, "item")
        else:
            go(d, console, "#/item/hostile/" + urllib.parse.quote(cid, safe=""), "item")
        assert d.find_element(By.CSS_SELECTOR, "[data-field=content_id]").text == cid
        assert json.loads(d.find_element(By.CSS_SELECTOR, "[data-field=metadata]").text) == meta
        nothing_ran()
        if i == 0:
            shot(d, "item-hostile")
        go(d, console, "#/bank/hostile", "bank")
    # In a lookup's matches.
    go(d, console, "#/lookup", "lookup")
    d.find_element(By.CSS_SELECTOR, "input[pattern]").send_keys(hashes[0] + Keys.ENTER)
    wait(d, lambda: css(d, ".result[data-type=hash]"), what="the hash result")
    cells = [td.text for td in css(d, "table.matches tbody tr")[0].find_elements(By.TAG_NAME, "td")]
    assert cells[3] == PAYLOAD_IMG and json.loads(cells[6]) == meta
    nothing_ran()

    assert js_errors(d) == []

    # The policy holds: an inline event handler, a javascript: link and a
    # string handed to the timer or to an HTML sink are all refused, and
    # each refusal is reported.
    tried = d.execute_script(
        "const out = [];"
        "try { const i = document.createElement('img');"
        " i.setAttribute('onerror', 'window.__pwned = 4'); i.src = 'x'; document.body.append(i);"
        " out.push('handler set'); } catch (e) { out.push(e.name); }"
        "try { const a = document.createElement('a');"
        " a.setAttribute('href', 'javascript:window.__pwned = 5'); document.body.append(a); a.click();"
        " out.push('clicked'); } catch (e) { out.push(e.name); }"
        "try { setTimeout('window.__pwned = 6', 0); out.push('timer set'); }"
        " catch (e) { out.push(e.name); }"
        "try { document.body.insertAdjacentHTML('beforeend', '<b>markup</b>'); out.push('html taken'); }"
        " catch (e) { out.push(e.name); }"
        "return out;")
    time.sleep(1)
    assert d.execute_script("return window.__pwned") is None
    v = d.execute_script("return window.__violations")
    # Trusted Types refuse the handler, the timer's string and the markup
    # outright; the javascript: link is followed, and script-src stops it.
    assert tried == ["TypeError", "clicked", "TypeError", "TypeError"], tried
    assert sorted(set(v)) == ["require-trusted-types-for", "script-src-elem"], v
    # The browser's console has each refusal, and nothing else.
    logged = js_errors(d)
    assert len(logged) >= 4 and all(m.startswith("security") for m in logged), logged
