#!/usr/bin/env python3
"""tests/support/tls-front.py - TLS in front of a plain HTTP test server on loopback.

Python 3 standard library only. The registry-trust tests write their fake registries and token
services in Rust as plain HTTP servers; this puts TLS (the given certificate and key) in front
of one, so a test can serve HTTPS that hoist verifies (its CA in a certs.d folder) or cannot
verify (an unknown CA), and see what reached the server behind it.

    tests/support/tls-front.py --cert srv.crt --key srv.key --upstream 127.0.0.1:PORT --log FILE

It listens on 127.0.0.1 (any free port) and prints `tls-front listening on 127.0.0.1:PORT` as
its first stdout line. Each accepted connection appends one line to --log: `handshake-ok` or
`handshake-failed: WHY` (a client that refused the certificate). After a handshake the bytes are
relayed both ways unchanged. It exits when its stdin closes (the test ended) or after
--lifetime seconds (default 120), whichever comes first.
"""
import argparse
import os
import socket
import ssl
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, ctx, upstream, log, lock):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        with lock, open(log, "a") as f:
            f.write(f"handshake-failed: {e}\n")
        conn.close()
        return
    with lock, open(log, "a") as f:
        f.write("handshake-ok\n")
    host, port = upstream.rsplit(":", 1)
    try:
        up = socket.create_connection((host, int(port)), timeout=10)
    except OSError:
        tls.close()
        return
    up.settimeout(None)
    back = threading.Thread(target=pump, args=(up, tls), daemon=True)
    back.start()
    pump(tls, up)
    back.join(10)
    tls.close()
    up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=120)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(f"tls-front listening on 127.0.0.1:{srv.getsockname()[1]}", flush=True)

    def end_on_eof():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=end_on_eof, daemon=True).start()
    threading.Timer(a.lifetime, lambda: os._exit(0)).start()
    lock = threading.Lock()
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, ctx, a.upstream, a.log, lock), daemon=True).start()


if __name__ == "__main__":
    main()
