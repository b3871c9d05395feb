"""A local stand-in for the four hash exchanges pdqmatch fetches from, on
127.0.0.1: NCMEC's hash sharing API (XML), StopNCII, Meta's ThreatExchange
(Graph API) and TCAP, each under its own path prefix:

    http://127.0.0.1:PORT/ncmec           NCMEC      GET /v2/entries
    http://127.0.0.1:PORT/stopncii        StopNCII   GET /v1/FetchHashes
    http://127.0.0.1:PORT/te              ThreatExchange  GET /v21.0/GROUP/threat_updates/
    http://127.0.0.1:PORT/tcap            TCAP       POST /token-auth/tcap/, GET /api/hash-list/v2/all

It plays each API from payload files (tests/data/exchanges/API.json): each
file lists phases, each phase the records the API adds or changes at that
moment, in the API's own shape, and how long ago each changed ("age", in
seconds before the phase was loaded; the stand-in writes the time in the
API's field).  Loading a phase keeps the records of earlier ones unless it
changes them (same id).  A test drives it over /_control:

    POST /_control/load     {"api", "file", "phase"}   or {"api", "synthetic": N}
    POST /_control/faults   {"api", "faults": {"REQ": {"status", "retry_after"}
                                                | {"corrupt": "truncate"|"garbage"
                                                   |"loop"|"doctype"}}}
                            (REQ: the data request's number, from 1, since the
                            faults were set)
    POST /_control/page_size {"api", "size"}
    POST /_control/delay    {"api", "seconds"}   (before each data answer)
    POST /_control/reset    {"api"}              (no records, faults or log)
    GET  /_control/requests?api=A   the data requests so far (path and query)

Credentials expected: CREDENTIALS below (TCAP's token is "tcap-token-N",
the Nth login).  A wrong one gets 401.

Run alone (the benchmark does): python3 exchange_standin.py [PORT]; it
prints the port on its first line.
"""
import base64
import calendar
import hashlib
import json
import random
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APIS = ("ncmec", "stopncii", "te", "tcap")
CREDENTIALS = {
    "ncmec": {"username": "ncmec-user", "password": "ncmec-secret-pw"},
    "stopncii": {"functions_key": "fk-secret-123", "subscription_key": "sk-secret-456"},
    "te": {"access_token": "te-secret-token"},
    "tcap": {"username": "tcap-user", "password": "tcap-secret-pw"},
}
DEFAULT_PAGE = {"ncmec": 3, "stopncii": 3, "te": 3, "tcap": 3}


def synthetic_hash(i, n_hex):
    return hashlib.sha256(b"x%d" % i).hexdigest()[:n_hex]


class Api:
    def __init__(self, name):
        self.name = name
        self.records = {}      # id -> (record dict, time)
        self.order = []        # ids in the order first seen
        self.synthetic = 0
        self.synthetic_t0 = 0
        self.page_size = DEFAULT_PAGE[name]
        self.delay = 0.0
        self.faults = {}
        self.requests = []
        self.data_requests = 0
        self.generation = 0    # page tokens of an earlier generation are stale
        self.logins = 0
        self.lock = threading.Lock()

    def key(self, r):
        if self.name == "ncmec":
            return "%s-%s" % (r["member"], r["id"])
        if self.name == "stopncii":
            return "%s:%s" % (r["signalType"], r["hashValue"])
        return str(r["id"])

    def load(self, records, now, forget=()):
        with self.lock:
            self.synthetic = 0
            for k in forget:
                if k in self.records:
                    del self.records[k]
                    self.order.remove(k)
            for r in records:
                r = dict(r)
                t = int(now - r.pop("age", 0))
                k = self.key(r)
                if k not in self.records:
                    self.order.append(k)
                self.records[k] = (r, t)
            self.generation += 1

    def items(self):
        """(key, record, time) of every record, in the API's order."""
        if self.synthetic:
            return None
        out = [(k,) + self.records[k] for k in self.order]
        if self.name == "ncmec":
            # NCMEC does not return entries in time order.
            random.Random(7).shuffle(out)
        else:
            out.sort(key=lambda x: (x[2], x[0]))
        return out


class Standin:
    def __init__(self):
        self.apis = {a: Api(a) for a in APIS}


def fmt_utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_utc(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin"

    def log_message(self, *a):
        pass

    # -- plumbing ------------------------------------------------------
    def send(self, status, body, ctype="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"))
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    @property
    def st(self):
        return self.server.standin

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path.startswith("/_control/"):
            return self.control(u.path[len("/_control/"):], self.body_json())
        if u.path == "/tcap/token-auth/tcap/":
            return self.tcap_login()
        self.send(404, {"error": "no such route"})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        if u.path == "/_control/requests":
            api = self.st.apis[q["api"]]
            return self.send(200, api.requests)
        prefix = u.path.split("/")[1] if u.path.count("/") >= 1 else ""
        if prefix not in APIS:
            return self.send(404, {"error": "no such route"})
        api = self.st.apis[prefix]
        with api.lock:
            api.requests.append({"path": u.path, "query": q,
                                 "auth": self.headers.get("Authorization"),
                                 "fk": self.headers.get("x-functions-key"),
                                 "sk": self.headers.get("Ocp-Apim-Subscription-Key")})
            api.data_requests += 1
            fault = api.faults.get(str(api.data_requests))
        if api.delay:
            time.sleep(api.delay)
        if fault and "status" in fault:
            headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
            return self.send(fault["status"], {"error": "a fault of the test"}, headers=headers)
        handler = getattr(self, "get_" + prefix)
        status, body, ctype = handler(api, u.path[len(prefix) + 1:], q)
        if fault and "corrupt" in fault and status == 200:
            mode = fault["corrupt"]
            if mode == "truncate":
                body = body[: len(body) // 2]
            elif mode == "garbage":
                body = "<<not %s at all>> {" % ("xml" if prefix == "ncmec" else "json")
            elif mode == "doctype":
                body = ('<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaa">]>'
                        '<queryResult>&a;</queryResult>')
        self.send(status, body, ctype)

    def control(self, what, j):
        api = self.st.apis.get(j.get("api"))
        if api is None:
            return self.send(400, {"error": "which api?"})
        if what == "load":
            if "synthetic" in j:
                with api.lock:
                    api.records.clear()
                    api.order.clear()
                    api.synthetic = int(j["synthetic"])
                    api.synthetic_t0 = int(time.time()) - 86400
                    api.generation += 1
            elif "records" in j:
                api.load(j["records"], time.time(), j.get("forget", []))
            else:
                with open(j["file"]) as f:
                    data = json.load(f)
                phase = data["phases"][j.get("phase", 0)]
                api.load(phase.get("records", []), time.time(), phase.get("forget", []))
        elif what == "faults":
            with api.lock:
                api.faults = j.get("faults", {})
                api.data_requests = 0
        elif what == "page_size":
            api.page_size = int(j["size"])
        elif what == "delay":
            api.delay = float(j["seconds"])
        elif what == "reset":
            with api.lock:
                api.records.clear()
                api.order.clear()
                api.synthetic = 0
                api.faults = {}
                api.requests = []
                api.data_requests = 0
                api.generation += 1
        elif what == "stale_tokens":
            with api.lock:
                api.generation += 1
        else:
            return self.send(404, {"error": "no such control"})
        self.send(200, {"ok": True})

    def page_of(self, api, rows, start, size):
        return rows[start:start + size]

    # -- NCMEC ---------------------------------------------------------
    def get_ncmec(self, api, path, q):
        c = CREDENTIALS["ncmec"]
        want = "Basic " + base64.b64encode(("%s:%s" % (c["username"], c["password"])).encode()).decode()
        if self.headers.get("Authorization") != want:
            return 401, "<error>unauthorized</error>", "application/xml"
        if path != "/v2/entries":
            return 404, "<error/>", "application/xml"
        try:
            t_from, t_to = parse_utc(q["from"]), parse_utc(q["to"])
        except (KeyError, ValueError):
            return 400, "<error>from and to are UTC times</error>", "application/xml"
        size = int(q.get("size", api.page_size))
        start = int(q.get("start", 1))
        if api.synthetic:
            # Synthetic entries i are stamped t0 + i // 1000: a window holds
            # those of its seconds.
            lo = max(0, (t_from - api.synthetic_t0) * 1000)
            hi = min(api.synthetic, max(0, (t_to - api.synthetic_t0 + 1) * 1000))
            rows = None
            total = max(0, hi - lo)
        else:
            rows = [x for x in api.items() if t_from <= x[2] <= t_to]
            total = len(rows)
        page = []
        if rows is not None:
            page = rows[start - 1:start - 1 + size]
        else:
            for k in range(start - 1, min(total, start - 1 + size)):
                i = lo + k
                page.append(("s", {"id": "e%d" % i, "member": 7, "kind": "image",
                                   "fingerprints": {"pdq": synthetic_hash(i, 64),
                                                    "md5": synthetic_hash(i, 32)}},
                             api.synthetic_t0 + i // 1000))
        images, videos = [], []
        for _, r, t in page:
            kind = r.get("kind", "image")
            tag = ("deleted" + kind.capitalize()) if r.get("deleted") else kind
            parts = ['<member id="%s">%s</member>' % (xml_escape(r["member"]),
                                                      xml_escape(r.get("member_name", "M")))]
            parts.append("<timestamp>%s</timestamp>" % fmt_utc(t))
            parts.append("<id>%s</id>" % xml_escape(r["id"]))
            if r.get("classification"):
                parts.append("<classification>%s</classification>" % xml_escape(r["classification"]))
            if not r.get("deleted"):
                fps = "".join("<%s>%s</%s>" % (k, xml_escape(v), k)
                              for k, v in r.get("fingerprints", {}).items())
                parts.append("<fingerprints>%s</fingerprints>" % fps)
                parts.append('<feedback lastUpdateTimestamp="%s"/>' % fmt_utc(t))
            for extra in r.get("unknown_elements", []):
                parts.append(extra)
            (images if kind == "image" else videos).append("<%s>%s</%s>" % (tag, "".join(parts), tag))
        out = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
               '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">']
        out.append('<images count="%d" maxTimestamp="%s">%s</images>' % (len(images), fmt_utc(t_to), "".join(images)))
        out.append('<videos count="%d" maxTimestamp="%s">%s</videos>' % (len(videos), fmt_utc(t_to), "".join(videos)))
        if start - 1 + size < total:
            nxt = "/v2/entries?from=%s&to=%s&start=%d&size=%d&max=%d" % (
                urllib.parse.quote(q["from"]), urllib.parse.quote(q["to"]),
                start + size, size, total)
            fault = api.faults.get(str(api.data_requests), {})
            if fault.get("corrupt") == "loop":
                nxt = "/v2/entries?" + urllib.parse.urlencode(q)
            out.append("<paging><next>%s</next></paging>" % xml_escape(nxt))
        out.append("</queryResult>")
        return 200, "".join(out), "application/xml"

    # -- StopNCII ------------------------------------------------------
    def get_stopncii(self, api, path, q):
        c = CREDENTIALS["stopncii"]
        if self.headers.get("x-functions-key") != c["functions_key"] or \
                self.headers.get("Ocp-Apim-Subscription-Key") != c["subscription_key"]:
            return 401, {"error": "keys"}, "application/json"
        if path != "/v1/FetchHashes":
            return 404, {"error": "no route"}, "application/json"
        since = int(q.get("startTimestamp", 0))
        size = int(q.get("pageSize", 800))
        start = 0
        if q.get("nextPageToken"):
            try:
                gen, start, set_since = map(int, base64.b64decode(q["nextPageToken"]).decode().split(":"))
            except Exception:
                return 400, {"error": "bad token"}, "application/json"
            if gen != api.generation or set_since != since:
                return 400, {"error": "the page token has expired"}, "application/json"
        if api.synthetic:
            total = api.synthetic if since <= api.synthetic_t0 + api.synthetic else 0
            recs = [{"lastModtimestamp": api.synthetic_t0 + i, "signalType": "ImagePDQ",
                     "hashValue": synthetic_hash(i, 64), "hashStatus": "Active",
                     "caseNumbers": {}, "CSPFeedbacks": []}
                    for i in range(start, min(total, start + size))
                    if api.synthetic_t0 + i >= since]
            max_t = api.synthetic_t0 + api.synthetic
        else:
            rows = [x for x in api.items() if x[2] >= since]
            total = len(rows)
            recs = []
            for _, r, t in rows[start:start + size]:
                r = dict(r)
                r["lastModtimestamp"] = t
                recs.append(r)
            max_t = max([x[2] for x in rows], default=since - 1)
        more = start + size < total
        body = {"count": len(recs), "hashRecords": recs, "hasMoreRecords": more,
                "nextPageToken": base64.b64encode(("%d:%d:%d" % (api.generation, start + size, since)).encode()).decode() if more else None,
                "nextSetTimestamp": max_t + 1, "unknownField": {"x": 1}}
        fault = api.faults.get(str(api.data_requests), {})
        if more and fault.get("corrupt") == "loop":
            body["nextPageToken"] = q.get("nextPageToken") or base64.b64encode(
                ("%d:%d:%d" % (api.generation, 0, since)).encode()).decode()
        return 200, json.dumps(body), "application/json"

    # -- ThreatExchange ------------------------------------------------
    def get_te(self, api, path, q):
        if q.get("access_token") != CREDENTIALS["te"]["access_token"]:
            return 401, {"error": {"message": "bad token"}}, "application/json"
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[2] != "threat_updates" or not parts[0].startswith("v"):
            return 404, {"error": "no route"}, "application/json"
        since = int(q.get("start_time", 0))
        size = int(q.get("limit", 100))
        start = int(q.get("after", 0))
        if api.synthetic:
            total = api.synthetic
            data = [{"id": str(10**9 + i), "indicator": synthetic_hash(i, 64), "type": "HASH_PDQ",
                     "last_updated": api.synthetic_t0 + i // 1000, "should_delete": False,
                     "descriptors": {"data": [{"id": str(i), "owner": {"id": "1"}, "tags": ["t"]}]}}
                    for i in range(start, min(total, start + size))]
        else:
            rows = [x for x in api.items() if x[2] >= since]
            total = len(rows)
            data = []
            for _, r, t in rows[start:start + size]:
                r = dict(r)
                r["last_updated"] = str(t)
                data.append(r)
        body = {"data": data, "paging": {"cursors": {"after": str(start + size)}}}
        if start + size < total:
            qq = dict(q)
            qq["after"] = str(start + size)
            fault = api.faults.get(str(api.data_requests), {})
            if fault.get("corrupt") == "loop":
                qq["after"] = str(start)
            body["paging"]["next"] = "http://%s/te%s?%s" % (self.headers["Host"], path,
                                                            urllib.parse.urlencode(qq))
        return 200, json.dumps(body), "application/json"

    # -- TCAP ----------------------------------------------------------
    def tcap_login(self):
        try:
            j = self.body_json()
        except ValueError:
            return self.send(400, {"error": "not json"})
        c = CREDENTIALS["tcap"]
        if j.get("username") != c["username"] or j.get("password") != c["password"]:
            return self.send(401, {"error": "login"})
        api = self.st.apis["tcap"]
        with api.lock:
            api.logins += 1
            n = api.logins
        self.send(200, {"token": "tcap-token-%d" % n, "user": {"name": "u"}})

    def get_tcap(self, api, path, q):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer tcap-token-"):
            return 401, {"error": "token"}, "application/json"
        if path != "/api/hash-list/v2/all":
            return 404, {"error": "no route"}, "application/json"
        size = int(q.get("limit", api.page_size))
        offset = int(q.get("offset", 0))
        after = q.get("after") or ""
        if api.synthetic:
            a_t, a_id = (map(int, after.split(","))) if after else (0, -1)
            first = a_id + 1
            total = api.synthetic
            results = [{"id": i, "hash_digest": synthetic_hash(i, 64), "algorithm": "PDQ",
                        "ideology": "x", "file_type": "jpg", "deleted": False,
                        "updated_on": float(api.synthetic_t0), "created_on": "2024-01-01T00:00:00Z"}
                       for i in range(first + offset, min(total, first + offset + size))]
            remaining = total - (first + offset)
        else:
            rows = api.items()
            if after:
                a_t, a_id = after.split(",")
                rows = [x for x in rows if (x[2], int(x[0])) > (int(a_t), int(a_id))]
            remaining = len(rows) - offset
            results = []
            for k, r, t in rows[offset:offset + size]:
                r = dict(r)
                r["updated_on"] = float(t)
                results.append(r)
        if results:
            last = results[-1]
            checkpoint = "%d,%d" % (int(last["updated_on"]), int(last["id"]))
        else:
            checkpoint = after
        body = {"count": len(results), "previous": None, "checkpoint": checkpoint,
                "results": results, "next": None, "extra": "ignored"}
        if remaining > size:
            qq = dict(q)
            qq["offset"] = str(offset + size)
            qq["limit"] = str(size)
            fault = api.faults.get(str(api.data_requests), {})
            if fault.get("corrupt") == "loop":
                qq["offset"] = str(offset)
            body["next"] = "http://%s/tcap%s?%s" % (self.headers["Host"], path,
                                                    urllib.parse.urlencode(qq))
        return 200, json.dumps(body), "application/json"


def start(port=0):
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    httpd.standin = Standin()
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    return httpd


if __name__ == "__main__":
    httpd = start(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(httpd.server_address[1], flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
