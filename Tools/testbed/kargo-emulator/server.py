#!/usr/bin/env python3
"""An emulation of the Kargo API server's promotion endpoints, for kh's tests.

It is NOT Kargo. It serves, over plain HTTP on 127.0.0.1:

* Kargo >= 1.9 (``--version v1.9.0`` or later): the REST API
  ``GET /v1beta1/system/server-version`` and
  ``POST /v1beta1/projects/{project}/stages/{stage}/promotions``
  (body: exactly one of ``freight``, ``freightAlias``, ``origin``; answer 201 with
  the Promotion; errors as ``{"error": "..."}`` with Kargo's messages and codes).
* older versions: the Connect RPCs (JSON codec)
  ``POST /akuity.io.kargo.service.v1alpha1.KargoService/GetVersionInfo`` and
  ``POST /akuity.io.kargo.service.v1alpha1.KargoService/PromoteToStage``
  (body ``{"project", "stage", "freight" | "freightAlias"}``, answer
  ``{"promotion": {...}}``; errors as ``{"code": "not_found", "message": "..."}``).
  REST paths answer ``404 page not found`` there, as gin does for unknown routes.

A promotion is created as a Promotion object in the Kubernetes API (the testbed's
kube emulator), named the way Kargo names them (``<stage>.<ulid>.<freight[:7]>``),
after the checks Kargo's server makes: the stage exists, the freight (or alias)
exists, and the freight is available to the stage (direct from its warehouse,
verified in an upstream stage, or approved for the stage).

Left out: every other endpoint; authentication beyond one static bearer token
(no OIDC, no admin login, no RBAC "promote" verb check); the Promotion defaulting
and validating webhooks (no steps copied, no ``origin`` resolution); events;
PromotionRequests for stages that select Targets; HTTP/2 and the Connect
streaming and protobuf codecs; and the controller: nothing moves a Promotion past
``Pending`` — tests write its status as Kargo's controller would.
"""
import argparse
import json
import os
import random
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONNECT = "/akuity.io.kargo.service.v1alpha1.KargoService/"
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
GROUP = "/apis/kargo.akuity.io/v1alpha1"


def ulid() -> str:
    """A ULID (48-bit millisecond time + 80 random bits), lower-case Crockford base32."""
    value = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    out = []
    for _ in range(26):
        out.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def version_tuple(text: str) -> tuple:
    core = text.lstrip("v").split("-")[0].split("+")[0]
    parts = [int(p) for p in core.split(".")[:3] if p.isdigit()]
    return tuple(parts + [0] * (3 - len(parts)))


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class Kube:
    """The few Kubernetes API calls the emulation needs, over HTTPS with the testbed's CA and token."""

    def __init__(self, server: str, ca: str, token_file: str):
        self.server = server.rstrip("/")
        self.context = ssl.create_default_context(cafile=ca)
        with open(token_file, encoding="utf-8") as f:
            self.token = f.read().strip()

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


class Emulator:
    def __init__(self, kube: Kube, version: str, token: str):
        self.kube, self.version, self.token = kube, version, token
        self.rest = version_tuple(version) >= (1, 9, 0)

    def version_info(self) -> dict:
        return {"version": self.version, "gitCommit": "0" * 40, "gitTreeDirty": False,
                "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
                "platform": "linux/amd64"}

    def promote(self, project: str, stage_name: str, freight: str, alias: str, origin: str) -> dict:
        if sum(1 for v in (freight, alias, origin) if v) != 1:
            raise ApiError(400, "exactly one of freight, freightAlias, or origin must be provided", "invalid_argument")
        status, stage = self.kube.call("GET", f"{GROUP}/namespaces/{project}/stages/{stage_name}")
        if status == 404:
            raise ApiError(404, f'Stage "{stage_name}" not found in project "{project}"', "not_found")
        if status != 200:
            raise ApiError(500, "", "internal")
        if origin:
            raise ApiError(400, "promotion by origin is not supported by this emulation", "invalid_argument")
        if freight:
            status, obj = self.kube.call("GET", f"{GROUP}/namespaces/{project}/freights/{freight}")
            if status == 404:
                raise ApiError(404, f'Freight "{freight}" not found in project "{project}"', "not_found")
        else:
            selector = urllib.parse.quote(f"kargo.akuity.io/alias={alias}")
            status, lst = self.kube.call("GET", f"{GROUP}/namespaces/{project}/freights?labelSelector={selector}")
            items = lst.get("items") or []
            if not items:
                raise ApiError(404, f'Freight with alias "{alias}" not found in project "{project}"', "not_found")
            obj = items[0]
        name = obj["metadata"]["name"]
        if not self.available(stage, obj):
            raise ApiError(400, f'Freight "{name}" is not available to Stage "{stage_name}"', "invalid_argument")
        promotion = {
            "apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Promotion",
            "metadata": {"name": f"{stage_name}.{ulid()}.{name[:7]}", "namespace": project,
                         "labels": {"kargo.akuity.io/stage": stage_name, "kargo.akuity.io/freight": name},
                         "annotations": {"kargo.akuity.io/create-actor": "admin"}},
            "spec": {"stage": stage_name, "freight": name},
        }
        status, created = self.kube.call("POST", f"{GROUP}/namespaces/{project}/promotions", promotion)
        if status not in (200, 201):
            raise ApiError(500, created.get("message", ""), "internal")
        return created

    @staticmethod
    def available(stage: dict, freight: dict) -> bool:
        origin = freight.get("origin") or {}
        fstatus = freight.get("status") or {}
        stage_name = stage["metadata"]["name"]
        if stage_name in (fstatus.get("approvedFor") or {}):
            return True
        for req in (stage.get("spec") or {}).get("requestedFreight") or []:
            if (req.get("origin") or {}).get("name") != origin.get("name"):
                continue
            sources = req.get("sources") or {}
            if sources.get("direct"):
                return True
            if any(s in (fstatus.get("verifiedIn") or {}) for s in sources.get("stages") or []):
                return True
        return False


class Handler(BaseHTTPRequestHandler):
    emulator: Emulator = None  # set in main
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("kargo-emulator: " + (fmt % args) + "\n")

    def send(self, status: int, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self) -> bool:
        return self.headers.get("Authorization", "") == "Bearer " + self.emulator.token

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method: str):
        em = self.emulator
        self._read = False  # one handler serves every request of a kept-alive connection
        path = urllib.parse.urlparse(self.path).path
        connect = path.startswith(CONNECT)
        if connect == em.rest:  # REST-only servers have no Connect routes and vice versa
            self.send(404, b"404 page not found", "text/plain")
            return
        try:
            if method == "POST":
                self.body()  # read it before answering, whatever the answer
            if not self.authorized():
                raise ApiError(401, "unauthorized", "unauthenticated")
            if not connect:
                parts = path.strip("/").split("/")
                if method == "GET" and path == "/v1beta1/system/server-version":
                    self.send(200, em.version_info())
                    return
                if method == "POST" and len(parts) == 6 and parts[:2] == ["v1beta1", "projects"] and parts[3] == "stages" \
                        and parts[5] == "promotions":
                    body = self.body()
                    promotion = em.promote(parts[2], parts[4], body.get("freight", ""), body.get("freightAlias", ""),
                                           body.get("origin", ""))
                    self.send(201, promotion)
                    return
                self.send(404, b"404 page not found", "text/plain")
                return
            if method != "POST":
                raise ApiError(405, "method not allowed", "unimplemented")
            body = self.body()
            rpc = path[len(CONNECT):]
            if rpc == "GetVersionInfo":
                self.send(200, {"versionInfo": em.version_info()})
            elif rpc == "PromoteToStage":
                promotion = em.promote(body.get("project", ""), body.get("stage", ""), body.get("freight", ""),
                                       body.get("freightAlias", ""), "")
                self.send(200, {"promotion": promotion})
            else:
                raise ApiError(404, f"unknown procedure {rpc}", "unimplemented")
        except ApiError as e:
            if connect:
                self.send(e.status, {"code": e.code, "message": e.message})
            else:
                self.send(e.status, {"error": e.message} if e.status != 500 else {})

    _last_body: dict = {}

    def body(self) -> dict:
        """The JSON body, read once (REST reads it before the auth check)."""
        if getattr(self, "_read", False):
            return self._last_body
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._read = True
        try:
            self._last_body = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, "invalid JSON body", "invalid_argument")
        return self._last_body


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--version", default="v1.9.0", help="the Kargo version to emulate (>= 1.9: REST, else Connect)")
    p.add_argument("--token-file", required=True, help="the bearer token clients must send")
    p.add_argument("--kube-server", required=True)
    p.add_argument("--kube-ca", required=True)
    p.add_argument("--kube-token-file", required=True)
    p.add_argument("--watch-pid", type=int, help="exit when this process (the test) is gone")
    args = p.parse_args()
    with open(args.token_file, encoding="utf-8") as f:
        token = f.read().strip()
    Handler.emulator = Emulator(Kube(args.kube_server, args.kube_ca, args.kube_token_file), args.version, token)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"kargo-emulator {args.version} listening on 127.0.0.1:{port}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        while True:
            time.sleep(1)
            if args.watch_pid:
                try:
                    os.kill(args.watch_pid, 0)
                except ProcessLookupError:
                    break
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
