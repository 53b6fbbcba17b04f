#!/usr/bin/env python3
"""kh's Hetzner Cloud API emulator: an HTTP server on 127.0.0.1 (stdlib only, one thread per connection).

    python3 -B server.py --port 18600 --token-file TOKEN [--ipv4-pool 127.0.1.1-127.0.1.254]
                         [--action-delay 0.05] [--rate-limit 3600] [--refill-per-second 1]

The API is served under /v1 (HCLOUD_ENDPOINT=http://127.0.0.1:PORT/v1) with bearer-token auth;
the test-control API lives under /__emulator/ (same token); /healthz answers without one.
What it emulates and what it leaves out: README.md beside this file.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hcloudemu import api  # noqa: E402
from hcloudemu.state import APIError, State, pool_from_spec  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kh-hcloud-emulator/1"
    state: State = None
    token: str = ""

    def log_message(self, fmt, *args):  # quiet: the request log is in memory (GET /__emulator/requests)
        pass

    # ------------------------------------------------------------ plumbing

    def _send(self, status, body, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None, raw
        try:
            return json.loads(raw), raw
        except ValueError:
            raise APIError(400, "json_error", "request body is not valid JSON") from None

    def _authorized(self):
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:].strip() == self.token

    def _handle(self):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        if path in ("/healthz", "/readyz"):
            return self._send(200, {"status": "ok"})
        try:
            body, _ = self._body()
        except APIError as error:
            return self._send(error.status, error.body())
        query = parse_qs(url.query, keep_blank_values=True)
        if path.startswith("/__emulator"):
            if not self._authorized():
                return self._send(401, {"error": {"code": "unauthorized", "message": "unable to authenticate"}})
            return self._control(path[len("/__emulator"):] or "/", query, body)
        if not path.startswith("/v1/") and path != "/v1":
            return self._send(404, {"error": {"code": "not_found", "message": f"no route for {path}"}})
        self._api(path[3:] or "/", query, body)

    def _api(self, path, query, body):
        state = self.state
        with state.lock:
            entry = {"time": time.time(), "method": self.command, "path": path, "route": path,
                     "query": query, "body": body, "user_agent": self.headers.get("User-Agent", "")}
            if not self._authorized():
                status, answer, headers = 401, {"error": {"code": "unauthorized", "message": "unable to authenticate"}}, {}
            elif not state.rate.take():
                state.rate_limited += 1
                status, headers = 429, {}
                answer = {"error": {"code": "rate_limit_exceeded", "message": "limit of requests per hour reached"}}
            else:
                fault = state.take_fault(self.command, path)
                try:
                    if fault is not None:
                        raise APIError(fault.get("status", 500), fault.get("code", "server_error"),
                                       fault.get("message", "injected fault"))
                    (status, answer), template = api.dispatch(state, self.command, path, query, body)
                    entry["route"] = template
                    headers = {}
                except APIError as error:
                    status, answer, headers = error.status, error.body(), error.headers
                    entry["route"] = _template_of(self.command, path)
            headers.update(state.rate.headers())
            entry["status"] = status
            entry["response"] = answer
            state.record(entry)
            delay = fault.get("delay", 0) if status != 401 and status != 429 and fault else 0
        if delay:
            time.sleep(min(float(delay), 30))
        self._send(status, answer, headers)

    def _control(self, path, query, body):
        state = self.state
        with state.lock:
            if self.command == "POST" and path == "/reset":
                state.reset()
                return self._send(200, {"reset": True})
            if self.command == "GET" and path == "/requests":
                since = int(query.get("since", ["0"])[-1])
                entries = state.log[since:] if since >= 0 else state.log
                if query.get("bodies", ["1"])[-1] == "0":
                    entries = [{k: v for k, v in e.items() if k != "response"} for e in entries]
                return self._send(200, {"total": len(state.log), "counts": state.counts,
                                        "rate_limited": state.rate_limited, "requests": entries})
            if self.command == "DELETE" and path == "/requests":
                state.log.clear()
                state.counts.clear()
                state.rate_limited = 0
                return self._send(200, {"cleared": True})
            if self.command == "GET" and path == "/rate_limit":
                return self._send(200, {"headers": state.rate.headers(), "refill_per_second": state.rate.refill})
            if self.command in ("POST", "PUT") and path == "/rate_limit":
                body = body or {}
                limit = int(body.get("limit", state.rate.limit))
                state.rate.configure(limit, int(body.get("remaining", limit)),
                                     float(body.get("refill_per_second", state.rate.refill)))
                return self._send(200, {"headers": state.rate.headers()})
            if self.command in ("POST", "PUT") and path == "/config":
                if "action_delay" in (body or {}):
                    state.action_delay = float(body["action_delay"])
                return self._send(200, {"action_delay": state.action_delay})
            if self.command == "POST" and path == "/faults":
                faults = body if isinstance(body, list) else [body or {}]
                state.faults.extend(faults)
                return self._send(200, {"faults": state.faults})
            if self.command == "DELETE" and path == "/faults":
                state.faults.clear()
                return self._send(200, {"faults": []})
            if self.command == "GET" and path == "/info":
                return self._send(200, {"counts": {k: len(v) for k, v in state.items.items()},
                                        "actions": len(state.actions), "action_delay": state.action_delay,
                                        "rate_limit": state.rate.headers(), "requests": len(state.log)})
        return self._send(404, {"error": {"code": "not_found", "message": f"no control route {self.command} {path}"}})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


def _template_of(method, path):
    for m, pattern, _ in api.ROUTES:
        if m == method and pattern.match(path):
            return pattern.pattern[1:-1]
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--ipv4-pool", default="127.0.1.1-127.0.1.254")
    parser.add_argument("--action-delay", type=float, default=0.05, help="seconds from running to success")
    parser.add_argument("--rate-limit", type=int, default=3600)
    parser.add_argument("--refill-per-second", type=float, default=1.0)
    parser.add_argument("--port-file", help="write the bound port here (with --port 0)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started it ends (for test suites)")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the emulator binds to loopback only")
    Handler.token = Path(args.token_file).read_text().strip()
    if not Handler.token:
        parser.error(f"{args.token_file} is empty")
    Handler.state = State(pool_from_spec(args.ipv4_pool), action_delay=args.action_delay, rate_limit=args.rate_limit,
                          refill_per_second=args.refill_per_second)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    if args.port_file:
        Path(args.port_file).write_text(str(server.server_address[1]))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            server.shutdown()
        threading.Thread(target=watch, daemon=True).start()
    print(f"hcloud emulator on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
