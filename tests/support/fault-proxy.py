#!/usr/bin/env python3
"""tests/support/fault-proxy.py - a fault-injecting HTTP reverse proxy for hoist's registry tests.

Python 3.11 standard library only. It listens on loopback (plain HTTP) in front of one registry
(http:// or https://), proxies every request faithfully - bodies streamed both ways, every
header kept (Range, Content-Range, Docker-*, Www-Authenticate ...) except hop-by-hop ones,
`Location` headers that point at the upstream rewritten to point at the proxy - and injects
faults into the requests its rules pick. Every request is logged as one JSON line.

    tests/support/fault-proxy.py --listen 127.0.0.1:0 --upstream http://127.0.0.1:5200 \
        --log /tmp/proxy.jsonl [--faults '429@blob-get:1,reset@blob-get:1']

It prints `fault-proxy listening on 127.0.0.1:PORT` as its first stdout line once it accepts
connections (PORT 0 in --listen = any free port: read the line, or --port-file). Without
--faults it is a pure counting proxy (how tests count uploads).

Fault rules (--faults, comma separated): ACTION@KIND-METHOD[=SUBSTRING][:COUNT[+SKIP]]
  ACTION   a 3-digit status (429, 500, 502, 503, 404 ...): answered by the proxy, not forwarded
           (a request body is read and discarded first); a registry-style JSON error body;
           429 also gets `Retry-After: N` (--retry-after, default 1)
           reset     send half of the body, then reset the connection (RST: SO_LINGER 0)
           truncate  send the full Content-Length header but half the body, then close (FIN)
           stall     send half of the body, then send nothing for --stall seconds, then close
           delay     wait --delay seconds, then proxy normally
           redirect  answer 307 with Location: --redirect-to + the request path (with query), as
                     registries do that serve blobs from another host (object storage)
           For reset/truncate/stall: on a request WITH a body (PUT/PATCH/POST with data) the proxy
           reads half of the request body and then resets/closes/stalls, without forwarding it;
           otherwise the request is forwarded and the RESPONSE is cut (a response without a body
           is not sent at all: the upstream did the work, the client never hears of it).
  KIND     blob (/v2/NAME/blobs/DIGEST), manifest (/v2/NAME/manifests/REF), upload
           (/v2/NAME/blobs/uploads/...), tags (/v2/NAME/tags/list), catalog, base (/v2/),
           other, any
  METHOD   get head put patch post delete any; `KIND` alone means any method.
           blob-put, blob-patch and blob-post mean the upload requests (upload-put ...), since
           blobs are only ever written through /blobs/uploads/
  =SUBSTRING  only requests whose path (with query) contains it, e.g. a digest prefix:
           reset@blob-get=sha256:9ca6:1
  COUNT    how many matching requests get the fault (default 1; `*` = all of them);
  +SKIP    let that many matching requests through first (`503@blob-get:1+2` = the 3rd only)
Rules are tried in order; a request seen by a rule counts for that rule, and the first rule
whose window (SKIP, SKIP+COUNT] it falls in takes it: later rules never see it. So
`503@manifest-get:2,reset@blob-get:1,truncate@blob-get:1` fails the first two manifest GETs,
resets the first blob GET and truncates the second.

Log (--log FILE, appended; one JSON object per request, written when the request is done):
  ts, dur_ms, conn (connection number), method, path (with query), kind, repo, digest (blob or
  manifest reference, the `digest` query of an upload PUT, the `mount` query of a POST),
  mount_from (the `from` query of a mount POST),
  range (request Range header), status (what the client got; null if nothing was sent),
  upstream_status (null if not forwarded), req_bytes (request body bytes read from the client),
  req_length (its Content-Length, "chunked" or null), resp_bytes (response body bytes sent),
  resp_length (the Content-Length sent, or null), forwarded (bool), fault (the rule, or null),
  error (what went wrong talking to either side, or null), location (the Location sent),
  authorization (the scheme of the request's Authorization header, e.g. "Basic", or null).
  Counting uploads: blob bytes sent = sum of req_bytes over kind "upload" (POST/PATCH/PUT; a
  monolithic upload may carry its data in the POST or the PUT); faulted or failed requests log
  the bytes they read too, so filter on a 2xx status when counting what landed. A blob is
  stored when a PUT (or a POST with a `digest` query) of kind "upload" gets 201: `digest` says
  which; a POST with mount_from that gets 201 is a cross-repository mount (no bytes); a
  manifest is stored by a PUT of kind "manifest" that gets 201. Lines are written as requests
  finish, so wait for the client to finish before reading the log.
"""
import argparse
import fcntl
import http.client
import itertools
import json
import os
import re
import socket
import ssl
import struct
import sys
import termios
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CHUNK = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade"}
KINDS = {"blob", "manifest", "upload", "tags", "catalog", "base", "other", "any"}
METHODS = {"get", "head", "put", "patch", "post", "delete", "any"}
ACTIONS = {"reset", "truncate", "stall", "delay", "redirect"}
ERROR_CODES = {400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
               429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
               504: "UNAVAILABLE"}

PATHS = [
    ("base", re.compile(r"^/v2/?$")),
    ("catalog", re.compile(r"^/v2/_catalog$")),
    ("upload", re.compile(r"^/v2/(?P<name>.+?)/blobs/uploads(?:/(?P<ref>[^/]*))?$")),
    ("blob", re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)$")),
    ("manifest", re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")),
    ("tags", re.compile(r"^/v2/(?P<name>.+)/tags/list$")),
]


def classify(path):
    """-> (kind, repo, ref) of a request path (without query)."""
    for kind, rx in PATHS:
        m = rx.match(path)
        if m:
            d = m.groupdict()
            return kind, d.get("name"), d.get("ref") or None
    return "other", None, None


class Rule:
    def __init__(self, text):
        self.text = text
        action, sep, target = text.partition("@")
        if not sep or not action or not target:
            raise ValueError(f"fault rule {text!r}: want ACTION@KIND-METHOD[:COUNT]")
        action = action.lower()
        if not (action in ACTIONS or re.fullmatch(r"[1-5]\d\d", action)):
            raise ValueError(f"fault rule {text!r}: action must be a status code or one of {sorted(ACTIONS)}")
        self.action = action
        self.count, self.skip = 1, 0
        m = re.fullmatch(r"(.*):(\*|\d+)(?:\+(\d+))?", target)
        if m:
            target = m.group(1)
            self.count = None if m.group(2) == "*" else int(m.group(2))
            self.skip = int(m.group(3) or 0)
        target, _, self.substring = target.partition("=")
        kind, _, method = target.lower().partition("-")
        method = method or "any"
        if kind not in KINDS or method not in METHODS:
            raise ValueError(f"fault rule {text!r}: kind must be one of {sorted(KINDS)}, "
                             f"method one of {sorted(METHODS)}")
        self.kind, self.method = kind, method
        self.seen = 0

    def matches(self, method, kind, path):
        if self.kind == "blob" and kind == "upload" and self.method in ("put", "patch", "post"):
            kind = "blob"  # blob-put/-patch/-post: the upload requests (no other blob writes exist)
        return ((self.kind == "any" or self.kind == kind)
                and (self.method == "any" or self.method == method.lower())
                and (not self.substring or self.substring in path))


class Faults:
    def __init__(self, spec):
        self.rules = [Rule(t.strip()) for t in (spec or "").split(",") if t.strip()]
        self.lock = threading.Lock()

    def pick(self, method, kind, path):
        with self.lock:
            for r in self.rules:
                if not r.matches(method, kind, path):
                    continue
                r.seen += 1
                if r.seen > r.skip and (r.count is None or r.seen <= r.skip + r.count):
                    return r
        return None


class Proxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, opts):
        super().__init__(addr, Handler)
        self.opts = opts
        up = urlsplit(opts.upstream)
        if up.scheme not in ("http", "https") or not up.hostname:
            sys.exit(f"fault-proxy: --upstream must be http://HOST:PORT or https://HOST:PORT, got {opts.upstream!r}")
        self.up_scheme, self.up_netloc = up.scheme, up.netloc
        self.up_host, self.up_port = up.hostname, up.port or (443 if up.scheme == "https" else 80)
        self.up_origins = {f"{up.scheme}://{up.netloc}"}
        if up.port is None:
            self.up_origins.add(f"{up.scheme}://{up.hostname}:{self.up_port}")
        self.ssl_ctx = None
        if up.scheme == "https":
            self.ssl_ctx = ssl.create_default_context(cafile=opts.upstream_ca)
            if opts.upstream_insecure:
                self.ssl_ctx.check_hostname = False
                self.ssl_ctx.verify_mode = ssl.CERT_NONE
        self.faults = Faults(opts.faults)
        self.conn_ids = itertools.count(1)
        self.log_lock = threading.Lock()
        self.log_file = open(opts.log, "a", encoding="utf-8") if opts.log else None

    def log(self, entry):
        line = json.dumps(entry)
        with self.log_lock:
            if self.log_file:
                self.log_file.write(line + "\n")
                self.log_file.flush()
            if self.opts.verbose:
                print(line, file=sys.stderr, flush=True)

    def upstream(self):
        t = self.opts.upstream_timeout
        if self.ssl_ctx:
            return http.client.HTTPSConnection(self.up_host, self.up_port, timeout=t, context=self.ssl_ctx)
        return http.client.HTTPConnection(self.up_host, self.up_port, timeout=t)


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    timeout = 300  # idle keep-alive connections are dropped after this

    def setup(self):
        super().setup()
        self.conn_id = next(self.server.conn_ids)

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            super().log_message(fmt, *args)

    def do_GET(self):
        self.proxy()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # --- request body --------------------------------------------------------------------
    def body_reader(self, limit=None):
        """Yields the request body in pieces (de-chunked), at most `limit` bytes if given."""
        e = self.entry
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while limit is None or e["req_bytes"] < limit:
                line = self.rfile.readline(65537)
                if not line:
                    raise ClientGone("client closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self.body_done = True
                    return
                left = size
                while left > 0:
                    want = min(left, CHUNK)
                    if limit is not None:
                        want = min(want, max(limit - e["req_bytes"], 0))
                        if want == 0:
                            return
                    data = self.rfile.read(want)
                    if not data:
                        raise ClientGone("client closed inside a chunk")
                    e["req_bytes"] += len(data)
                    left -= len(data)
                    yield data
                self.rfile.readline(3)  # CRLF after the chunk
            return
        total = self.req_length if isinstance(self.req_length, int) else 0
        if limit is not None:
            total = min(total, limit)
        while e["req_bytes"] < total:
            data = self.rfile.read(min(CHUNK, total - e["req_bytes"]))
            if not data:
                raise ClientGone(f"client closed after {e['req_bytes']} of {total} body bytes")
            e["req_bytes"] += len(data)
            yield data
        if limit is None or total == self.req_length:
            self.body_done = True

    def has_body(self):
        return self.req_length == "chunked" or (isinstance(self.req_length, int) and self.req_length > 0)

    # --- sending -------------------------------------------------------------------------
    def start_response(self, status, reason, headers):
        self.send_response_only(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.entry["status"] = status

    def send_body(self, data):
        try:
            self.wfile.write(data)
        except OSError as e:
            raise ClientGone(f"client went away: {e}") from e
        self.entry["resp_bytes"] += len(data)

    def reset_connection(self):
        """Abort the client connection with a TCP RST (SO_LINGER 0), after letting what was
        written reach the peer (the kernel would drop still-queued bytes on an RST)."""
        sock = self.connection
        deadline = time.monotonic() + 2
        buf = bytearray(4)
        while time.monotonic() < deadline:
            try:
                fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
            except OSError:
                break
            if struct.unpack("i", buf)[0] == 0:
                break
            time.sleep(0.01)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())  # close now: socketserver would shutdown() (FIN) first
        except OSError:
            pass
        self.close_connection = True

    def cut(self, action):
        """Ends the connection the way a reset/truncate/stall fault wants."""
        if action == "reset":
            self.reset_connection()
            return
        if action == "stall":
            time.sleep(self.server.opts.stall)
        self.close_connection = True  # socketserver then shuts down (FIN) and closes

    # --- the proxy -----------------------------------------------------------------------
    def proxy(self):
        srv, opts = self.server, self.server.opts
        t0 = time.time()
        url = urlsplit(self.path)
        kind, repo, ref = classify(url.path)
        query = parse_qs(url.query)
        digest = ref if kind in ("blob", "manifest") else (query.get("digest") or query.get("mount") or [None])[0]
        te = self.headers.get("Transfer-Encoding", "").lower()
        cl = self.headers.get("Content-Length")
        if "chunked" in te:
            self.req_length = "chunked"
        elif cl is not None and cl.strip().isdigit():
            self.req_length = int(cl)
        else:
            self.req_length = None
        self.body_done = not self.has_body()
        rule = srv.faults.pick(self.command, kind, self.path)
        self.entry = e = {
            "ts": round(t0, 3), "dur_ms": None, "conn": self.conn_id, "method": self.command,
            "path": self.path, "kind": kind, "repo": repo, "digest": digest,
            "mount_from": (query.get("from") or [None])[0] if "mount" in query else None,
            "range": self.headers.get("Range"), "status": None, "upstream_status": None,
            "req_bytes": 0, "req_length": self.req_length, "resp_bytes": 0, "resp_length": None,
            "forwarded": False, "fault": rule.text if rule else None, "error": None, "location": None,
            "authorization": (self.headers.get("Authorization") or "").split(" ")[0] or None,
        }
        try:
            if rule and rule.action.isdigit():
                self.answer_status(int(rule.action))
            elif rule and rule.action == "redirect":
                self.redirect()
            elif rule and rule.action in ("reset", "truncate", "stall") and self.has_body():
                half = (self.req_length // 2) if isinstance(self.req_length, int) else CHUNK
                for _ in self.body_reader(limit=half):
                    pass
                self.cut(rule.action)
            else:
                if rule and rule.action == "delay":
                    time.sleep(opts.delay)
                self.forward(rule.action if rule else None)
        except ClientGone as x:
            e["error"] = str(x)
            self.close_connection = True
        except Exception as x:  # never leave the client waiting on a bug of ours
            e["error"] = f"{type(x).__name__}: {x}"
            if e["status"] is None:
                try:
                    self.answer_status(502, str(x))
                except Exception:
                    pass
            self.close_connection = True
        finally:
            if not self.body_done:
                self.close_connection = True  # an unread body would be parsed as the next request
            e["dur_ms"] = round((time.time() - t0) * 1000, 1)
            srv.log(e)

    def answer_status(self, status, message=None):
        for _ in self.body_reader():  # drain the body so the connection can be kept
            pass
        code = ERROR_CODES.get(status, "UNKNOWN")
        body = json.dumps({"errors": [{"code": code, "message": message or f"fault injected by fault-proxy ({status})",
                                       "detail": None}]}).encode() + b"\n"
        headers = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(body))),
                   ("Docker-Distribution-Api-Version", "registry/2.0")]
        if status == 429 or (status == 503 and self.server.opts.retry_after_503):
            headers.append(("Retry-After", str(self.server.opts.retry_after)))
        self.start_response(status, None, headers)
        self.entry["resp_length"] = len(body)
        if self.command != "HEAD":
            self.send_body(body)

    def redirect(self):
        to = self.server.opts.redirect_to
        if not to:
            raise ValueError("a redirect rule needs --redirect-to")
        for _ in self.body_reader():
            pass
        location = to.rstrip("/") + self.path
        self.start_response(307, None, [("Location", location), ("Content-Length", "0")])
        self.entry["location"] = location
        self.entry["resp_length"] = 0

    def send_json_patched(self, resp, headers):
        """--json-set: the upstream's JSON object answer with some keys replaced."""
        data = resp.read()
        try:
            obj = json.loads(data)
            if isinstance(obj, dict):
                for item in self.server.opts.json_set:
                    key, _, value = item.partition("=")
                    obj[key] = json.loads(value)
                data = json.dumps(obj).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
        headers.append(("Content-Length", str(len(data))))
        self.start_response(resp.status, resp.reason, headers)
        self.entry["resp_length"] = len(data)
        if self.command != "HEAD":
            self.send_body(data)

    def rewrite_location(self, value):
        for origin in self.server.up_origins:
            if value.startswith(origin):
                host = self.headers.get("Host") or "%s:%s" % self.server.server_address[:2]
                return f"http://{host}{value[len(origin):]}"
        return value

    def forward(self, action):
        srv, e = self.server, self.entry
        up = srv.upstream()
        try:
            try:
                up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                up.putheader("Host", srv.up_netloc)
                for k, v in self.headers.items():
                    lk = k.lower()
                    if lk in HOP_BY_HOP or lk in ("host", "expect"):
                        continue
                    up.putheader(k, v)
                if self.req_length == "chunked":
                    up.putheader("Transfer-Encoding", "chunked")
                up.endheaders()
                body = self.body_reader()
                try:
                    for data in body:
                        up.send(b"%x\r\n%s\r\n" % (len(data), data) if self.req_length == "chunked" else data)
                    if self.req_length == "chunked":
                        up.send(b"0\r\n\r\n")
                except OSError as x:
                    # the upstream may have answered early (e.g. 401) and stopped reading: read
                    # the rest of the client's body and pass that answer on if there is one
                    e["error"] = f"upstream stopped reading the body: {type(x).__name__}: {x}"
                    for _ in body:
                        pass
                resp = up.getresponse()
            except ClientGone:
                raise
            except (OSError, http.client.HTTPException) as x:
                e["error"] = f"upstream: {type(x).__name__}: {x}"
                if not self.body_done:
                    for _ in self.body_reader():
                        pass
                self.answer_status(502, f"fault-proxy: upstream {srv.opts.upstream} failed: {x}")
                return
            e["forwarded"] = True
            e["upstream_status"] = resp.status
            headers, length = [], None
            for k, v in resp.getheaders():
                lk = k.lower()
                if lk in HOP_BY_HOP:
                    continue
                if lk == "content-length":
                    length = int(v) if v.strip().isdigit() else None
                if lk == "location":
                    v = self.rewrite_location(v)
                    e["location"] = v
                if lk == "www-authenticate" and srv.opts.realm:
                    v = re.sub(r'realm="[^"]*"', f'realm="{srv.opts.realm}"', v)
                headers.append((k, v))
            bodiless = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
            if srv.opts.json_set and not bodiless and resp.status == 200 and not action:
                self.send_json_patched(resp, headers)
                return
            chunked_out = not bodiless and length is None
            if chunked_out:
                headers.append(("Transfer-Encoding", "chunked"))
            e["resp_length"] = length
            cut = action in ("reset", "truncate", "stall")
            if cut and (bodiless or length == 0):
                self.cut(action)  # the client gets nothing at all
                return
            self.start_response(resp.status, resp.reason, headers)
            if bodiless:
                return
            limit = None
            if cut:
                limit = length // 2 if length is not None else None
            sent = 0
            while True:
                want = CHUNK if limit is None else min(CHUNK, limit - sent)
                if want <= 0:
                    break
                try:
                    data = resp.read(want)
                except (OSError, http.client.HTTPException) as x:
                    e["error"] = f"upstream body: {type(x).__name__}: {x}"
                    self.close_connection = True
                    return
                if not data:
                    break
                if chunked_out:
                    try:
                        self.wfile.write(b"%x\r\n" % len(data))
                        self.send_body(data)
                        self.wfile.write(b"\r\n")
                    except OSError as x:
                        raise ClientGone(f"client went away: {x}") from x
                else:
                    self.send_body(data)
                sent += len(data)
                if cut and limit is None:
                    break  # unknown length: cut after the first piece
            if cut:
                self.cut(action)
                return
            if chunked_out:
                try:
                    self.wfile.write(b"0\r\n\r\n")
                except OSError as x:
                    raise ClientGone(f"client went away: {x}") from x
            if length is not None and sent < length:
                e["error"] = f"upstream sent {sent} of {length} body bytes"
                self.close_connection = True
        finally:
            up.close()


def main():
    p = argparse.ArgumentParser(description="fault-injecting HTTP reverse proxy for registry tests",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (PORT 0 = any free port)")
    p.add_argument("--upstream", required=True, help="http://HOST:PORT or https://HOST:PORT of the registry")
    p.add_argument("--upstream-ca", help="CA file for an https upstream")
    p.add_argument("--upstream-insecure", action="store_true", help="do not verify an https upstream")
    p.add_argument("--upstream-timeout", type=float, default=120)
    p.add_argument("--log", help="JSON-lines request log (appended)")
    p.add_argument("--faults", default="", help="comma-separated fault rules (see below)")
    p.add_argument("--retry-after", default="1", help="Retry-After value sent with 429 (default 1)")
    p.add_argument("--retry-after-503", action="store_true", help="send Retry-After with 503 too")
    p.add_argument("--stall", type=float, default=30, help="seconds a `stall` fault holds the connection")
    p.add_argument("--delay", type=float, default=2, help="seconds a `delay` fault waits")
    p.add_argument("--realm", help="replace the realm of WWW-Authenticate challenges with this URL")
    p.add_argument("--json-set", action="append", default=[], metavar="KEY=JSON",
                   help="in 200 answers that are a JSON object, set KEY to the JSON value (repeatable), "
                        "e.g. expires_in=18446744073709551615 in front of a token server")
    p.add_argument("--redirect-to", help="http://HOST:PORT a `redirect` fault sends the client to")
    p.add_argument("--port-file", help="write the port listened on to this file once listening")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when standard input closes (so a crashed test leaves no proxy behind)")
    p.add_argument("--verbose", action="store_true", help="log to stderr too")
    opts = p.parse_args()
    try:
        Faults(opts.faults)
    except ValueError as x:
        sys.exit(f"fault-proxy: {x}")
    host, _, port = opts.listen.rpartition(":")
    srv = Proxy((host or "127.0.0.1", int(port)), opts)
    h, prt = srv.server_address[:2]
    if opts.port_file:
        with open(opts.port_file + ".tmp", "w") as f:
            f.write(f"{prt}\n")
        os.replace(opts.port_file + ".tmp", opts.port_file)
    print(f"fault-proxy listening on {h}:{prt}", flush=True)
    if opts.exit_on_stdin_eof:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
