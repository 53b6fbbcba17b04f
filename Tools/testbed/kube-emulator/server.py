#!/usr/bin/env python3
"""kh's Kubernetes API emulation: an in-memory API server on 127.0.0.1 that kubectl can use.

    server.py --port 18443 --token-file TOKEN --tls-cert CRT --tls-key KEY --logs-dir DIR

HTTPS (kubectl sends a bearer token only over TLS), JSON only, bearer-token auth.
See docs/testbed.md for what it emulates and what not. Standard library only.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubeemu import errors  # noqa: E402
from kubeemu.errors import ApiError  # noqa: E402
from kubeemu.patches import json_patch, merge_patch  # noqa: E402
from kubeemu.registry import Registry, ResourceType  # noqa: E402
from kubeemu.selectors import parse_field_selector, parse_label_selector  # noqa: E402
from kubeemu.store import Store, meta, render  # noqa: E402
from kubeemu.tables import wants_table, table_for  # noqa: E402

VERSION_INFO = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-kh-emulator", "gitCommit": "0" * 40,
    "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0",
    "compiler": "gc", "platform": "linux/amd64",
}
UNSUPPORTED_BODY = ("application/vnd.kubernetes.protobuf", "application/cbor", "application/yaml")


class Emulator:
    def __init__(self, token: str, logs_dir: Path, max_watch_seconds: int) -> None:
        self.token = token
        self.logs_dir = logs_dir
        self.max_watch_seconds = max_watch_seconds
        self.registry = Registry()
        self.store = Store(self.registry)
        self.stopping = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kh-kube-emulator"
    timeout = 300  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stalls
    emulator: Emulator  # set on the subclass made in main()

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass  # a client that failed the TLS handshake or went away

    # ---------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), format % args))

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, code: int, text: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    def _client_gone(self) -> bool:
        """True once the client closed its end (checked while streaming; clients send nothing then)."""
        conn = self.connection
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            if not readable:
                return False
            if isinstance(conn, ssl.SSLSocket):
                conn.setblocking(False)
                try:
                    return conn.recv(1) == b""
                except ssl.SSLWantReadError:
                    return False
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return True
                finally:
                    conn.settimeout(self.timeout)
            return conn.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self.emulator.token.encode())

    # ---------------------------------------------------------------- routing

    def _dispatch(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            parts = [unquote(p) for p in url.path.split("/") if p]
            body = self._read_body()
            if parts[:1] in (["healthz"], ["livez"], ["readyz"]):
                self._send_text(200, b"ok")
                return
            if not self._authorized():
                raise ApiError(401, "Unauthorized", "Unauthorized")
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if body and content_type.startswith(UNSUPPORTED_BODY):
                raise ApiError(415, f"the kh kube emulator speaks JSON only, not {content_type}: use "
                                    f"`kubectl apply -f` instead of verbs that send protobuf",
                               "UnsupportedMediaType")
            self._route(method, parts, query, body, content_type)
        except ApiError as e:
            self._send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug here: answer 500 and keep serving
            traceback.print_exc()
            self._send_json(500, errors.status_object(500, f"kh kube emulator: {type(e).__name__}: {e}",
                                                      "InternalError"))

    def _route(self, method: str, parts: list[str], query: dict[str, str], body: bytes, content_type: str) -> None:
        reg = self.emulator.registry
        if not parts:
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]
            for group, versions in reg.group_versions().items():
                if group:
                    paths += [f"/apis/{group}"] + [f"/apis/{group}/{v}" for v in versions]
            self._send_json(200, {"paths": sorted(paths)})
            return
        if parts == ["version"]:
            self._send_json(200, VERSION_INFO)
            return
        if parts[0] == "openapi":
            self._openapi(parts[1:])
            return
        if parts[0] == "_emulator":
            self._admin(method, parts[1:], query, body)
            return
        if parts == ["api"]:
            host = self.headers.get("Host", "127.0.0.1")
            self._send_json(200, reg.api_versions(host))
            return
        if parts == ["apis"]:
            self._send_json(200, reg.api_group_list())
            return
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            group = parts[1]
            if len(parts) == 2:
                doc = reg.api_group(group)
                if doc is None:
                    raise errors.path_not_found()
                self._send_json(200, doc)
                return
            version, rest = parts[2], parts[3:]
        else:
            raise errors.path_not_found()
        if not rest:
            doc = reg.resource_list(group, version)
            if doc is None:
                raise errors.path_not_found()
            self._send_json(200, doc)
            return
        self._resource(method, group, version, rest, query, body, content_type)

    def _openapi(self, rest: list[str]) -> None:
        reg = self.emulator.registry
        if rest == ["v3"]:
            self._send_json(200, reg.openapi_v3_root())
            return
        if rest[:1] == ["v3"]:
            gv = rest[1:]
            doc = None
            if gv[:1] == ["api"] and len(gv) == 2:
                doc = reg.openapi_v3_doc("", gv[1])
            elif gv[:1] == ["apis"] and len(gv) == 3:
                doc = reg.openapi_v3_doc(gv[1], gv[2])
            if doc is not None:
                self._send_json(200, doc)
                return
        raise errors.path_not_found()

    # ---------------------------------------------------------------- resources

    def _resource(self, method: str, group: str, version: str, rest: list[str], query: dict[str, str],
                  body: bytes, content_type: str) -> None:
        reg, store = self.emulator.registry, self.emulator.store
        watch = query.get("watch") in ("true", "1")
        if rest[0] == "watch":
            watch, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise errors.path_not_found()
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        t = reg.find(group, version, plural)
        if t is None or (namespace is not None and not t.namespaced):
            raise errors.path_not_found()
        if name is not None and t.namespaced and namespace is None:
            raise errors.path_not_found()
        if sub is not None and sub not in t.subresources:
            raise errors.path_not_found()
        dry_run = "dryRun" in query and query["dryRun"] == "All"

        if method == "GET" and name is None:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))
            for f in fields:
                if t.field_value({}, f.field) is None:
                    raise ApiError(400, f'field label not supported: {f.field}', "BadRequest")
            if watch:
                self._watch(t, version, namespace, labels, fields, query)
                return
            limit = int(query.get("limit") or 0)
            items, rv, token, remaining = store.list(t, namespace, labels, fields, limit, query.get("continue"))
            list_meta: dict[str, Any] = {"resourceVersion": rv}
            if token:
                list_meta["continue"] = token
                list_meta["remainingItemCount"] = remaining
            rendered = [render(t, version, o) for o in items]
            if wants_table(self.headers.get("Accept", "")):
                self._send_json(200, table_for(t, version, rendered, list_meta, query))
                return
            self._send_json(200, {"apiVersion": t.api_version(version), "kind": f"{t.kind}List",
                                  "metadata": list_meta, "items": rendered})
            return
        if sub == "scale":
            self._scale(method, t, namespace, name or "", body, content_type, dry_run)
            return
        if method == "GET":
            if sub == "log":
                self._logs(t, namespace, name, query)
                return
            obj = render(t, version, store.get(t, namespace, name))
            if wants_table(self.headers.get("Accept", "")):
                self._send_json(200, table_for(t, version, [obj], {"resourceVersion": meta(obj).get("resourceVersion")},
                                               query))
                return
            self._send_json(200, obj)
            return
        if method == "DELETE":
            options = self._json(body) if body else {}
            if "propagationPolicy" in query:
                options["propagationPolicy"] = query["propagationPolicy"]
            if name is None:
                labels = parse_label_selector(query.get("labelSelector"))
                fields = parse_field_selector(query.get("fieldSelector"))
                items, _, _, _ = store.list(t, namespace, labels, fields)
                for o in items:
                    m = meta(o)
                    store.delete(t, m.get("namespace"), m["name"], options, dry_run)
                self._send_json(200, {"apiVersion": t.api_version(version), "kind": f"{t.kind}List",
                                      "metadata": {"resourceVersion": str(store.rv)},
                                      "items": [render(t, version, o) for o in items]})
                return
            result = store.delete(t, namespace, name, options, dry_run)
            self._send_json(200, result if result.get("kind") == "Status" else render(t, version, result))
            return
        if method == "POST" and name is None:
            obj = store.create(t, namespace, self._json(body), dry_run)
            self._send_json(201, render(t, version, obj))
            return
        if method == "PUT" and name is not None and sub in (None, "status"):
            obj = store.update(t, namespace, name, self._json(body), sub, dry_run)
            self._send_json(200, render(t, version, obj))
            return
        if method == "PATCH" and name is not None and sub in (None, "status"):
            obj = store.patch(t, version, namespace, name, content_type, self._json(body), sub, dry_run,
                              query.get("fieldManager"))
            self._send_json(200, render(t, version, obj))
            return
        raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed")

    def _scale(self, method: str, t: ResourceType, namespace: str | None, name: str, body: bytes,
               content_type: str, dry_run: bool) -> None:
        store = self.emulator.store
        if method == "GET":
            self._send_json(200, store.scale(t, namespace, name))
            return
        if method == "PUT":
            self._send_json(200, store.set_scale(t, namespace, name, self._json(body), dry_run))
            return
        if method == "PATCH":
            current = store.scale(t, namespace, name)
            patch = self._json(body)
            if content_type == "application/json-patch+json":
                wanted = json_patch(current, patch)
            elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                wanted = merge_patch(current, patch)
            else:
                raise ApiError(415, f"unsupported patch type {content_type} for scale", "UnsupportedMediaType")
            self._send_json(200, store.set_scale(t, namespace, name, wanted, dry_run))
            return
        raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed")

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError as e:
            raise ApiError(400, f"the body of the request is not valid JSON: {e}", "BadRequest")

    def _watch(self, t: ResourceType, version: str, namespace: str | None, labels: Any, fields: Any,
               query: dict[str, str]) -> None:
        store = self.emulator.store
        timeout = min(int(query.get("timeoutSeconds") or self.emulator.max_watch_seconds),
                      self.emulator.max_watch_seconds)
        deadline = time.monotonic() + timeout
        send_initial = query.get("sendInitialEvents") == "true"
        watcher, first = store.watch(t, version, namespace, labels, fields, query.get("resourceVersion"),
                                     send_initial)
        wants_tables = wants_table(self.headers.get("Accept", ""))
        try:
            self._start_stream("application/json")
            for ev in first:
                self._chunk(self._watch_line(t, version, ev, wants_tables, query))
            if watcher.expired:
                return
            while time.monotonic() < deadline and not self.emulator.stopping.is_set():
                try:
                    ev = watcher.events.get(timeout=0.5)
                except Exception:  # queue.Empty
                    if self._client_gone():
                        return
                    continue
                if ev is None:  # the store closed this watch (reset, or the watcher fell behind)
                    self._chunk(json.dumps({"type": "ERROR", "object": errors.status_object(
                        410, "the watch was closed by the emulator; list again", "Expired")}).encode() + b"\n")
                    return
                self._chunk(self._watch_line(t, version, ev, wants_tables, query))
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            store.unwatch(watcher)
            self._end_stream()

    @staticmethod
    def _watch_line(t: ResourceType, version: str, ev: dict[str, Any], wants_tables: bool,
                    query: dict[str, str]) -> bytes:
        if wants_tables and ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
            obj = ev["object"]
            ev = {"type": ev["type"], "object": table_for(t, version, [obj], {
                "resourceVersion": meta(obj).get("resourceVersion")}, query)}
        return json.dumps(ev).encode() + b"\n"

    # ---------------------------------------------------------------- logs

    def _logs(self, t: ResourceType, namespace: str | None, name: str | None, query: dict[str, str]) -> None:
        store = self.emulator.store
        pod = store.get(t, namespace, name or "")
        spec = pod.get("spec") or {}
        containers = [c.get("name") for c in spec.get("containers") or []]
        init = [c.get("name") for c in spec.get("initContainers") or []]
        container = query.get("container")
        if not container:
            container = (meta(pod).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        if not container:
            if len(containers) == 1:
                container = containers[0]
            else:
                raise ApiError(400, f"a container name must be specified for pod {name}, choose one of: "
                                    f"[{' '.join(containers)}]" +
                               (f" or one of the init containers: [{' '.join(init)}]" if init else ""),
                               "BadRequest")
        if container not in containers + init:
            raise ApiError(400, f"container {container} is not valid for pod {name}", "BadRequest")
        suffix = ".previous.log" if query.get("previous") == "true" else ".log"
        path = self.emulator.logs_dir / (namespace or "") / (name or "") / f"{container}{suffix}"
        data = path.read_bytes() if path.is_file() else b""
        tail = int(query["tailLines"]) if query.get("tailLines", "").lstrip("-").isdigit() else -1
        if tail >= 0:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail else b""
        stamp = query.get("timestamps") == "true"

        def stamped(chunk: bytes) -> bytes:
            if not stamp or not chunk:
                return chunk
            when = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(path.stat().st_mtime)).encode()
            return b"".join(when + b" " + line for line in chunk.splitlines(keepends=True))

        limit = int(query["limitBytes"]) if query.get("limitBytes", "").isdigit() else None
        if query.get("follow") != "true":
            out = stamped(data)
            self._send_text(200, out[:limit] if limit is not None else out)
            return
        # follow: stream what is there, then what is appended, until the container terminates,
        # the pod goes away, the client leaves or the emulator's watch deadline passes.
        self._start_stream("text/plain")
        offset = path.stat().st_size if path.is_file() else 0
        deadline = time.monotonic() + self.emulator.max_watch_seconds
        try:
            self._chunk(stamped(data))
            while time.monotonic() < deadline and not self.emulator.stopping.is_set():
                if path.is_file() and path.stat().st_size > offset:
                    with path.open("rb") as f:
                        f.seek(offset)
                        more = f.read()
                    offset += len(more)
                    self._chunk(stamped(more))
                    continue
                try:
                    current = store.get(t, namespace, name or "")
                except ApiError:
                    return
                statuses = (current.get("status") or {}).get("containerStatuses") or []
                if any(s.get("name") == container and "terminated" in (s.get("state") or {}) for s in statuses):
                    return
                if self._client_gone():
                    return
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            self._end_stream()

    # ---------------------------------------------------------------- emulator admin (tests only)

    def _admin(self, method: str, rest: list[str], query: dict[str, str], body: bytes) -> None:
        em = self.emulator
        if method == "POST" and rest == ["reset"]:
            em.store.reset()
            self._send_json(200, {"reset": True, "resourceVersion": str(em.store.rv)})
            return
        if method == "GET" and rest == ["info"]:
            counts: dict[str, int] = {}
            for t, _ in em.store.iter_all():
                counts[f"{t.plural}.{t.group}" if t.group else t.plural] = \
                    counts.get(f"{t.plural}.{t.group}" if t.group else t.plural, 0) + 1
            self._send_json(200, {"resourceVersion": str(em.store.rv), "objects": counts,
                                  "watches": len(em.store.watchers),
                                  "crds": sorted(t.crd for t in em.registry.types.values() if t.crd)})
            return
        if rest[:1] == ["logs"] and len(rest) == 4 and method in ("PUT", "POST", "DELETE"):
            ns, pod, container = rest[1], rest[2], rest[3]
            for part in (ns, pod, container):
                if not part or part.startswith(".") or "/" in part:
                    raise ApiError(400, "invalid log path", "BadRequest")
            path = em.logs_dir / ns / pod / container
            path.parent.mkdir(parents=True, exist_ok=True)
            if method == "DELETE":
                path.unlink(missing_ok=True)
            else:
                with path.open("ab" if method == "POST" else "wb") as f:
                    f.write(body)
            self._send_json(200, {"path": str(path), "bytes": path.stat().st_size if path.exists() else 0})
            return
        if method == "POST" and rest == ["objects"]:
            doc = self._json(body)
            items = doc.get("items") if isinstance(doc, dict) and doc.get("kind", "").endswith("List") else [doc]
            out = []
            for obj in items or []:
                t, version = self._type_of(obj)
                m = meta(obj)
                ns = m.get("namespace") if t.namespaced else None
                try:
                    em.store.get(t, ns, m.get("name", ""))
                    exists = True
                except ApiError:
                    exists = False
                if exists:
                    # upsert: replace the object and its status
                    current = em.store.get(t, ns, m["name"])
                    body_obj = dict(obj)
                    body_obj["metadata"] = {**m, "resourceVersion": meta(current)["resourceVersion"]}
                    em.store.update(t, ns, m["name"], body_obj)
                    stored = em.store.update(t, ns, m["name"], body_obj, "status") if "status" in obj else \
                        em.store.get(t, ns, m["name"])
                else:
                    stored = em.store.create(t, ns, obj, verbatim=True)
                out.append(render(t, version, stored))
            self._send_json(200, {"apiVersion": "v1", "kind": "List", "items": out})
            return
        raise errors.path_not_found()

    def _type_of(self, obj: Any) -> tuple[ResourceType, str]:
        if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
            raise ApiError(400, "each object needs apiVersion and kind", "BadRequest")
        group, _, version = obj["apiVersion"].rpartition("/")
        for t in self.emulator.registry.types.values():
            if t.group == group and t.kind == obj["kind"] and version in t.versions:
                return t, version
        raise ApiError(404, f'no matches for kind "{obj["kind"]}" in version "{obj["apiVersion"]}"', "NotFound")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", required=True, help="file holding the bearer token clients must send")
    parser.add_argument("--tls-cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--tls-key", required=True, help="server private key (PEM)")
    parser.add_argument("--logs-dir", required=True, help="pod logs: DIR/<namespace>/<pod>/<container>.log")
    parser.add_argument("--max-watch-seconds", type=int, default=1800,
                        help="longest a watch or a log follow stays open (default 1800)")
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("--host must be a loopback address")
    token = Path(args.token_file).read_text().strip()
    if not token:
        parser.error("the token file is empty")
    logs_dir = Path(args.logs_dir).resolve()
    logs_dir.mkdir(parents=True, exist_ok=True)
    emulator = Emulator(token, logs_dir, args.max_watch_seconds)
    handler = type("BoundHandler", (Handler,), {"emulator": emulator})
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(args.tls_cert, args.tls_key)
    # The handshake runs on the first read, in the connection's own thread, not in accept().
    server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)

    def stop(signum: int, frame: Any) -> None:
        emulator.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"kh kube emulator listening on https://{args.host}:{args.port} (pid {os.getpid()})\n")
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
