#!/usr/bin/python3
"""scripts/token-server.py - a Docker-style Bearer token server for hoist's registry tests.

No Debian package ships one, so this is the project's own (Python stdlib + Debian's python3-jwt
and python3-cryptography). scripts/registry starts it for the `token` registry mode; it is not
meant for anything but loopback tests.

    /usr/bin/python3 scripts/token-server.py --listen 127.0.0.1:5204 \
        --key token.key --cert token.crt [--chain ca.crt] \
        --issuer hoist-token-issuer --service hoist-registry \
        --user hoist:hoist-pass --log requests.jsonl

The flow it implements (what Docker Hub, GHCR and Quay do): the registry answers 401 with
`WWW-Authenticate: Bearer realm="http://127.0.0.1:5204/token",service="...",scope="..."`; the
client asks the realm for a token, with Basic credentials or anonymously:

  GET  /token?service=S&scope=repository:NAME:pull,push[&scope=...][&account=U]
  POST /token   (form: grant_type=password, username, password, service, scope, client_id;
                 the OAuth2 variant containerd/dockerd try first)

  valid credentials    -> 200 {"token", "access_token", "expires_in", "issued_at"}; every
                          requested action is granted
  no credentials       -> 200, but only "pull" on repositories is granted (like a public repo
                          on Docker Hub); with --anonymous none, nothing is granted
  wrong credentials    -> 401 {"errors": [{"code": "UNAUTHORIZED", ...}], "details": ...}
  a different service  -> 400 (a client must pass the service from the challenge)
  GET /healthz         -> 200 "ok" (readiness)

The token is a JWT signed RS256 with --key. Its header carries the signing certificate chain
(`x5c`, default) and/or a `kid` (--sign-header x5c|kid|both): `kid` is the libtrust key ID of the
signing public key, which CNCF distribution looks up among the keys of the certificates in its
`auth.token.rootcertbundle`; `x5c` is verified against that bundle as roots.

Every request is logged as one JSON line in --log (appended, flushed at once), e.g.
  {"ts": 1700000000.1, "method": "GET", "path": "/token?...", "credentials": "basic",
   "user": "hoist", "status": 200, "result": "ok", "service": "hoist-registry", "account": null,
   "requested": ["repository:t/x:pull,push"], "granted": ["repository:t/x:pull,push"]}
`credentials` is "none", "basic" or "password" (POST form); `user` is the name sent, or null.
Passwords and tokens are never logged. Concurrent tests share the server: filter by the
repository names in "requested".
"""
import argparse
import base64
import binascii
import hashlib
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def parse_args():
    p = argparse.ArgumentParser(description="Docker-style Bearer token server for tests")
    p.add_argument("--listen", default="127.0.0.1:5204", help="HOST:PORT (PORT 0 = any free port)")
    p.add_argument("--key", required=True, help="PEM private key (RSA) that signs the tokens")
    p.add_argument("--cert", required=True, help="PEM certificate of --key")
    p.add_argument("--chain", action="append", default=[],
                   help="PEM certificates appended to x5c after --cert (repeatable)")
    p.add_argument("--issuer", default="hoist-token-issuer")
    p.add_argument("--service", default="hoist-registry")
    p.add_argument("--user", action="append", default=[], metavar="USER:PASSWORD",
                   help="an account that is granted every requested action (repeatable)")
    p.add_argument("--anonymous", choices=["pull", "none"], default="pull",
                   help="what anonymous requests are granted on repositories (default pull)")
    p.add_argument("--ttl", type=int, default=300, help="token lifetime in seconds")
    p.add_argument("--sign-header", choices=["x5c", "kid", "both"], default="x5c")
    p.add_argument("--log", help="JSON-lines request log (appended)")
    return p.parse_args()


def load_pem_certificates(data):
    """Every certificate in a PEM file (cryptography 38, Debian 12's, has no bulk loader)."""
    end = b"-----END CERTIFICATE-----"
    certs = []
    for block in data.split(end)[:-1]:
        start = block.find(b"-----BEGIN CERTIFICATE-----")
        if start >= 0:
            certs.append(x509.load_pem_x509_certificate(block[start:] + end + b"\n"))
    if not certs:
        sys.exit("token-server: no PEM certificate found")
    return certs


def libtrust_key_id(public_key):
    """The key ID libtrust (and so CNCF distribution) gives a public key: the first 240 bits of
    SHA-256 over its DER SubjectPublicKeyInfo, base32, in colon-separated groups of four."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def parse_scope(text):
    """`type[(class)]:name:actions` -> dict, or None. The name may hold ':' (host:port/x)."""
    first, last = text.find(":"), text.rfind(":")
    if first <= 0 or last == first:
        return None
    typ, name, actions = text[:first], text[first + 1:last], text[last + 1:]
    cls = None
    if typ.endswith(")") and "(" in typ:
        typ, cls = typ[:-1].split("(", 1)
    acts = [a for a in actions.split(",") if a]
    return {"type": typ, "class": cls, "name": name, "actions": acts}


def scope_str(s, actions):
    typ = s["type"] + (f"({s['class']})" if s["class"] else "")
    return f"{typ}:{s['name']}:{','.join(actions)}"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, opts):
        super().__init__(addr, Handler)
        self.opts = opts
        self.users = {}
        for u in opts.user:
            name, sep, pw = u.partition(":")
            if not sep:
                sys.exit(f"token-server: --user wants USER:PASSWORD, got {u!r}")
            self.users[name] = pw
        with open(opts.key, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        certs = []
        for path in [opts.cert] + opts.chain:
            with open(path, "rb") as f:
                certs += load_pem_certificates(f.read())
        self.header = {}
        if opts.sign_header in ("x5c", "both"):
            self.header["x5c"] = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                                  for c in certs]
        if opts.sign_header in ("kid", "both"):
            self.header["kid"] = libtrust_key_id(certs[0].public_key())
        self.log_lock = threading.Lock()
        self.log_file = open(opts.log, "a", encoding="utf-8") if opts.log else None

    def log_json(self, entry):
        line = json.dumps(entry, sort_keys=False)
        with self.log_lock:
            if self.log_file:
                self.log_file.write(line + "\n")
                self.log_file.flush()
            print(line, file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hoist-token-server"

    def log_message(self, fmt, *args):  # the JSON log replaces http.server's access log
        pass

    def reply(self, status, obj, headers=()):
        body = (json.dumps(obj) + "\n").encode() if not isinstance(obj, bytes) else obj
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if not isinstance(obj, bytes) else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.entry["status"] = status

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.handle_request()

    def do_POST(self):
        self.handle_request()

    def handle_request(self):
        srv = self.server
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        self.entry = {"ts": round(time.time(), 3), "method": self.command, "path": self.path,
                      "credentials": "none", "user": None, "status": None, "result": None,
                      "service": None, "account": None, "requested": [], "granted": []}
        try:
            if url.path == "/healthz":
                self.entry["result"] = "health"
                self.reply(200, b"ok\n")
                return
            if url.path != "/token":
                self.entry["result"] = "not-found"
                self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
                return
            form = {}
            if self.command == "POST":
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode("utf-8", "replace") if n > 0 else ""
                form = parse_qs(raw, keep_blank_values=True)
            params = {k: v for k, v in query.items()}
            for k, v in form.items():
                params.setdefault(k, []).extend(v)
            self.issue(params)
        except Exception as e:  # never leave a client hanging without an answer
            self.entry["result"] = f"error: {e}"
            if self.entry["status"] is None:
                try:
                    self.reply(500, {"errors": [{"code": "UNKNOWN", "message": str(e)}]})
                except OSError:
                    pass
        finally:
            srv.log_json(self.entry)

    def credentials(self, params):
        """-> (kind, user, password) from Basic auth or a POST password grant."""
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                user, sep, pw = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return "basic", None, None
            return "basic", user, (pw if sep else None)
        if self.command == "POST" and params.get("grant_type", [""])[0] == "password":
            return "password", params.get("username", [""])[0], params.get("password", [""])[0]
        return "none", None, None

    def issue(self, params):
        srv, opts = self.server, self.server.opts
        e = self.entry
        service = params.get("service", [None])[0]
        e["service"] = service
        e["account"] = params.get("account", [None])[0]
        scopes = [s for raw in params.get("scope", []) for s in raw.split(" ") if s]
        e["requested"] = scopes
        kind, user, pw = self.credentials(params)
        e["credentials"], e["user"] = kind, user
        if self.command == "POST" and params.get("grant_type", [""])[0] not in ("password", ""):
            e["result"] = "unsupported-grant"
            self.reply(400, {"error": "unsupported_grant_type",
                             "errors": [{"code": "UNSUPPORTED", "message": "only grant_type=password"}]})
            return
        if service is not None and service != opts.service:
            e["result"] = "wrong-service"
            self.reply(400, {"errors": [{"code": "INVALID_SERVICE",
                                         "message": f"unknown service {service!r}, this server issues tokens for {opts.service!r}"}]})
            return
        authed = False
        if kind != "none":
            if user is None or pw is None or srv.users.get(user) != pw:
                e["result"] = "bad-credentials"
                self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username/password"}],
                                 "details": "incorrect username or password"})
                return
            authed = True
        access, granted = [], []
        for text in scopes:
            s = parse_scope(text)
            if s is None:
                continue
            if authed:
                acts = list(s["actions"])
            elif opts.anonymous == "pull" and s["type"] == "repository":
                acts = [a for a in s["actions"] if a == "pull"]
            else:
                acts = []
            item = {"type": s["type"], "name": s["name"], "actions": acts}
            if s["class"]:
                item["class"] = s["class"]
            access.append(item)
            granted.append(scope_str(s, acts))
        e["granted"] = granted
        now = int(time.time())
        claims = {"iss": opts.issuer, "sub": user if authed else "", "aud": opts.service,
                  "exp": now + opts.ttl, "nbf": now - 30, "iat": now, "jti": uuid.uuid4().hex,
                  "access": access}
        token = jwt.encode(claims, srv.key, algorithm="RS256", headers=srv.header)
        e["result"] = "ok"
        body = {"token": token, "access_token": token, "expires_in": opts.ttl,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        if self.command == "POST":
            body["scope"] = " ".join(granted)
        self.reply(200, body)


def main():
    opts = parse_args()
    host, _, port = opts.listen.rpartition(":")
    srv = Server((host or "127.0.0.1", int(port)), opts)
    h, p = srv.server_address[:2]
    print(f"token-server listening on {h}:{p} (service {opts.service}, issuer {opts.issuer})",
          file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
