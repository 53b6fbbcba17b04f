#!/usr/bin/env python3
"""A programmable HTTP server for the KhHTTP tests. Binds 127.0.0.1 only.

Prints `READY <port> <blackhole-port>` once listening, and exits when its stdin
closes (so it never outlives the test process), or on SIGTERM.

Every request with a `key` query parameter is counted per key (see /count).

  /ok                         200 "ok"
  /slow?ms=N[&key=K]          waits N ms, then 200; with K, counts how many
                              calls for K were in the server at once (see /count)
  /status?code=N              answers N
  /flaky?key=K&fail=N&code=C[&retry-after=S|&retry-after-date=S]
                              the first N calls for K answer C (with Retry-After:
                              S seconds, or an HTTP date S seconds ahead), then 200
                              "attempt=M"
  /drop?key=K&fail=N          the first N calls close the connection without an answer
  /ratelimit?limit=L&remaining=R&reset=S[&style=x]
                              200 with RateLimit-* (or X-RateLimit-*) headers
  /echo                       200 JSON: method, path, query, headers (lower-case), body
  /json                       200, the request body back as application/json
  /bytes?n=N                  N bytes of "x"
  /count?key=K                200 JSON {"count": calls seen for K, "peak": most
                              /slow calls for K in flight at once}

The blackhole port listens with a full accept queue and never accepts: a connect
to it hangs until the client's connect deadline.
"""
import email.utils
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

counts = {}
in_flight = {}
peaks = {}
counts_lock = threading.Lock()


def enter(key, step):
    """Tracks /slow calls in flight per key and the peak of them."""
    if key is None:
        return
    with counts_lock:
        in_flight[key] = in_flight.get(key, 0) + step
        peaks[key] = max(peaks.get(key, 0), in_flight[key])


def bump(key):
    if key is None:
        return 0
    with counts_lock:
        counts[key] = counts.get(key, 0) + 1
        return counts[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer, Nagle off: no 40 ms delayed-ACK stalls on kept-alive connections.
    disable_nagle_algorithm = True
    wbufsize = 65536

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=None, content_type="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        key = query.get("key")
        if url.path != "/count":
            seen = bump(key)
        path = url.path

        if path == "/ok":
            return self.reply(200, "ok\n")
        if path == "/slow":
            enter(key, 1)
            try:
                time.sleep(int(query.get("ms", "1000")) / 1000)
            finally:
                enter(key, -1)
            return self.reply(200, "slow\n")
        if path == "/status":
            code = int(query.get("code", "500"))
            return self.reply(code, f"status {code}\n")
        if path == "/flaky":
            fail = int(query.get("fail", "1"))
            if seen <= fail:
                headers = {}
                if "retry-after" in query:
                    headers["Retry-After"] = query["retry-after"]
                if "retry-after-date" in query:
                    at = time.time() + float(query["retry-after-date"])
                    headers["Retry-After"] = email.utils.formatdate(at, usegmt=True)
                if "reset" in query:
                    headers["RateLimit-Limit"] = "10"
                    headers["RateLimit-Remaining"] = "0"
                    headers["RateLimit-Reset"] = query["reset"]
                return self.reply(int(query.get("code", "503")), f"failing {seen}\n", headers)
            return self.reply(200, f"attempt={seen}\n")
        if path == "/drop":
            if seen <= int(query.get("fail", "1")):
                self.close_connection = True
                return
            return self.reply(200, f"attempt={seen}\n")
        if path == "/ratelimit":
            prefix = "X-" if query.get("style") == "x" else ""
            headers = {}
            for name in ("limit", "remaining", "reset"):
                if name in query:
                    headers[f"{prefix}RateLimit-{name.capitalize()}"] = query[name]
            return self.reply(200, "ok\n", headers)
        if path == "/echo":
            payload = {
                "method": self.command,
                "path": path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            return self.reply(200, json.dumps(payload), content_type="application/json")
        if path == "/json":
            return self.reply(200, body, content_type="application/json")
        if path == "/bytes":
            return self.reply(200, b"x" * int(query.get("n", "0")))
        if path == "/count":
            with counts_lock:
                payload = {"count": counts.get(key, 0), "peak": peaks.get(key, 0)}
            return self.reply(200, json.dumps(payload), content_type="application/json")
        return self.reply(404, "not found\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def blackhole():
    """A listener whose accept queue is full: further SYNs are dropped."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.05)
    return listener, fillers, port


def main():
    server = Server(("127.0.0.1", 0), Handler)
    keep = blackhole()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]} {keep[2]}", flush=True)
    # Exit when the parent closes our stdin (or dies).
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
