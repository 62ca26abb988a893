"""agent: a small HTTP service (standard library http.server).

GET /health    -> {"status": "ok"}   (liveness probe, no outbound calls)
GET /          -> name, version, python, settings
GET /upstream  -> is the configured upstream reachable (uses requests)
"""

import json
import platform
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from worker import check_upstream, load_settings

VERSION = "0.3.1"
SETTINGS = load_settings()


class Handler(BaseHTTPRequestHandler):
    server_version = "agent/" + VERSION

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._json(200, {"status": "ok"})
        elif path == "/":
            self._json(200, {"name": "agent", "version": VERSION,
                             "python": platform.python_version(), "settings": SETTINGS})
        elif path == "/upstream":
            self._json(200, check_upstream(SETTINGS["upstream_url"]))
        else:
            self._json(404, {"error": "not found", "path": path})

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main():
    server = ThreadingHTTPServer(("0.0.0.0", int(SETTINGS["port"])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"agent {VERSION} listening on port {SETTINGS['port']}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
