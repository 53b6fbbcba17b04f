"""The in-memory object store: one global resourceVersion, create/update/patch/delete, watch fan-out.

Every mutation runs under one lock, takes the next resourceVersion and appends a watch event to a
bounded history, from which watches that name a resourceVersion are resumed.
"""

from __future__ import annotations

import base64
import copy
import json
import queue
import random
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

from . import errors
from .errors import ApiError
from .patches import json_patch, merge_patch, strategic_merge
from .registry import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType
from .selectors import FieldRequirement, LabelRequirement, dotted, fields_match, labels_match

HISTORY = 10000  # watch events kept for resuming a watch from a resourceVersion
WATCH_QUEUE_LIMIT = 10000  # a watcher that falls this far behind is closed with 410 Expired
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def render(t: ResourceType, version: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stored object as the given served version shows it (no conversion: same fields)."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = t.api_version(version)
    out["kind"] = t.kind
    # Keep apiVersion and kind first, as the real API prints them.
    return {"apiVersion": out.pop("apiVersion"), "kind": out.pop("kind"), **out}


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _removed(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A merge patch deleting what `previous` set and `current` no longer sets (maps only)."""
    out: dict[str, Any] = {}
    for k, v in previous.items():
        if k not in current:
            out[k] = None
        elif isinstance(v, dict) and isinstance(current[k], dict):
            nested = _removed(v, current[k])
            if nested:
                out[k] = nested
    return out


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: tuple[str, str]
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclass(eq=False)  # identity semantics: watchers live in a set
class Watcher:
    t: ResourceType
    version: str
    namespace: str | None
    labels: list[LabelRequirement]
    fields: list[FieldRequirement]
    events: "queue.Queue[dict[str, Any] | None]" = field(default_factory=queue.Queue)
    expired: bool = False

    def _matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and meta(obj).get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj, self.t.field_value)

    def translate(self, ev: Event) -> dict[str, Any] | None:
        """The event this watcher sees, following the real API: an object that leaves the selector
        is DELETED for the watcher, one that enters it is ADDED."""
        if ev.key != self.t.key:
            return None
        now, before = self._matches(ev.obj), self._matches(ev.old)
        if ev.type == "ADDED":
            kind = "ADDED" if now else None
        elif ev.type == "DELETED":
            kind = "DELETED" if now else None
        elif now and before:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"
        elif before:
            kind = "DELETED"
        else:
            kind = None
        if kind is None:
            return None
        return {"type": kind, "object": render(self.t, self.version, ev.obj)}


class Store:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.lock = threading.RLock()
        self.rv = 0
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.history: deque[Event] = deque(maxlen=HISTORY)
        self.watchers: set[Watcher] = set()
        # Server-side apply: the last configuration each field manager applied to each object, so
        # that fields a manager stops applying are removed (no ownership or conflicts beyond that).
        self.applied: dict[tuple[tuple[str, str], tuple[str, str], str], dict[str, Any]] = {}
        self._seed_namespaces()

    # ---------------------------------------------------------------- plumbing

    def _seed_namespaces(self) -> None:
        ns_type = self.registry.types[NAMESPACE_KEY]
        for name in DEFAULT_NAMESPACES:
            self.create(ns_type, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def reset(self) -> None:
        """Forget every object and every CRD; watches end (clients list again)."""
        with self.lock:
            for w in list(self.watchers):
                w.expired = True
                w.events.put(None)
            self.watchers.clear()
            self.objects.clear()
            self.history.clear()
            self.applied.clear()
            for key, t in list(self.registry.types.items()):
                if t.crd is not None:
                    del self.registry.types[key]
            self._seed_namespaces()

    def _bucket(self, t: ResourceType) -> dict[tuple[str, str], dict[str, Any]]:
        return self.objects.setdefault(t.key, {})

    def _emit(self, kind: str, t: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        ev = Event(self.rv, kind, t.key, copy.deepcopy(obj), copy.deepcopy(old) if old else None)
        self.history.append(ev)
        if kind == "DELETED":
            m = meta(obj)
            where = self._ns_key(t, m.get("namespace"), m.get("name", ""))
            for k in [k for k in self.applied if k[0] == t.key and k[1] == where]:
                del self.applied[k]
        for w in list(self.watchers):
            out = w.translate(ev)
            if out is None:
                continue
            if w.events.qsize() >= WATCH_QUEUE_LIMIT:
                w.expired = True
                w.events.put(None)
                self.watchers.discard(w)
            else:
                w.events.put(out)

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _require_namespace(self, t: ResourceType, namespace: str | None) -> None:
        if not t.namespaced:
            return
        if not namespace:
            raise ApiError(400, "the server could not find the requested resource: a namespace is required",
                           "BadRequest")
        ns = self.objects.get(NAMESPACE_KEY, {}).get(("", namespace))
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if meta(ns).get("deletionTimestamp"):
            raise ApiError(403, f"{t.plural} \"{meta(ns).get('name')}\" is forbidden: unable to create new "
                                f"content in namespace {namespace} because it is being terminated",
                           "Forbidden", {"name": namespace, "kind": "namespaces"})

    @staticmethod
    def _ns_key(t: ResourceType, namespace: str | None, name: str) -> tuple[str, str]:
        return (namespace or "") if t.namespaced else "", name

    # ---------------------------------------------------------------- reads

    def get(self, t: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self._bucket(t).get(self._ns_key(t, namespace, name))
            if obj is None:
                raise errors.not_found(t.group, t.plural, name)
            return copy.deepcopy(obj)

    def list(self, t: ResourceType, namespace: str | None, labels: list[LabelRequirement],
             fields: list[FieldRequirement], limit: int = 0,
             continue_token: str | None = None) -> tuple[list[dict[str, Any]], str, str | None, int | None]:
        """(items, resourceVersion, continue token, remaining count)."""
        with self.lock:
            start = ""
            if continue_token:
                try:
                    start = json.loads(base64.urlsafe_b64decode(continue_token.encode()))["start"]
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, "continue key is not valid: invalid continue token", "BadRequest")
            items = []
            for (ns, name), obj in sorted(self._bucket(t).items()):
                if namespace is not None and ns != namespace:
                    continue
                if start and f"{ns}/{name}" <= start:
                    continue
                if labels_match(labels, obj) and fields_match(fields, obj, t.field_value):
                    items.append(copy.deepcopy(obj))
            token, remaining = None, None
            if limit and len(items) > limit:
                last = meta(items[limit - 1])
                token = base64.urlsafe_b64encode(json.dumps(
                    {"start": f"{last.get('namespace', '') if t.namespaced else ''}/{last['name']}"}).encode()).decode()
                remaining = len(items) - limit
                items = items[:limit]
            return items, str(self.rv), token, remaining

    # ---------------------------------------------------------------- create

    def create(self, t: ResourceType, namespace: str | None, body: dict[str, Any], dry_run: bool = False,
               verbatim: bool = False) -> dict[str, Any]:
        """POST. `verbatim` (the emulator's seeding endpoint) keeps status as given."""
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object", "BadRequest")
        with self.lock:
            obj = copy.deepcopy(body)
            m = meta(obj)
            body_ns = m.get("namespace")
            if t.namespaced:
                if namespace and body_ns and body_ns != namespace:
                    raise ApiError(400, "the namespace of the provided object does not match the namespace "
                                        "sent on the request", "BadRequest")
                namespace = namespace or body_ns
                self._require_namespace(t, namespace)
                m["namespace"] = namespace
            else:
                m.pop("namespace", None)
                namespace = None
            if not m.get("name"):
                if m.get("generateName"):
                    m["name"] = m["generateName"] + "".join(random.choice(_NAME_CHARS) for _ in range(5))
                else:
                    raise errors.invalid(t.group, t.kind, "", [
                        ("metadata.name", "Required value: name or generateName is required")])
            name = m["name"]
            if m.get("resourceVersion") and not verbatim:
                raise ApiError(500, "resourceVersion should not be set on objects to be created",
                               "InternalError")
            key = self._ns_key(t, namespace, name)
            if key in self._bucket(t):
                raise errors.already_exists(t.group, t.plural, name)
            obj.pop("apiVersion", None)
            obj.pop("kind", None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = now_rfc3339()
            m["generation"] = 1
            for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
                m.pop(k, None)
            if "status" in t.subresources and not verbatim:
                obj.pop("status", None)
            self._defaults_on_create(t, obj, verbatim)
            _fold_string_data(t, obj)
            if t.key == CRD_KEY:
                new_type = self.registry.validate_crd(obj)
                if not dry_run:
                    self.registry.register_crd(new_type)
                obj["status"] = self._crd_status(obj)
            if dry_run:
                return obj
            m["resourceVersion"] = self._next_rv()
            self._bucket(t)[key] = obj
            self._emit("ADDED", t, obj, None)
            return copy.deepcopy(obj)

    def _defaults_on_create(self, t: ResourceType, obj: dict[str, Any], verbatim: bool) -> None:
        m = meta(obj)
        if t.key == NAMESPACE_KEY:
            m.setdefault("labels", {})["kubernetes.io/metadata.name"] = m["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {})["phase"] = obj.get("status", {}).get("phase", "Active")
        elif t.key == ("", "pods") and not verbatim:
            obj["status"] = {"phase": "Pending"}
        elif t.key == ("batch", "jobs"):
            spec = obj.setdefault("spec", {})
            if not spec.get("manualSelector") and not spec.get("selector"):
                uid = m["uid"]
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
                labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": m["name"],
                               "controller-uid": uid, "job-name": m["name"]})

    @staticmethod
    def _crd_status(obj: dict[str, Any]) -> dict[str, Any]:
        spec = obj.get("spec") or {}
        now = now_rfc3339()
        storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        return {
            "acceptedNames": copy.deepcopy(spec.get("names") or {}),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "storedVersions": storage,
        }

    # ---------------------------------------------------------------- update / patch

    def update(self, t: ResourceType, namespace: str | None, name: str, body: dict[str, Any],
               subresource: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """PUT on the object or on its status subresource."""
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object", "BadRequest")
        with self.lock:
            key = self._ns_key(t, namespace, name)
            current = self._bucket(t).get(key)
            if current is None:
                raise errors.not_found(t.group, t.plural, name)
            body_meta = body.get("metadata") or {}
            if body_meta.get("name") and body_meta["name"] != name:
                raise ApiError(400, f"the name of the object ({body_meta['name']}) does not match the name on "
                                    f"the URL ({name})", "BadRequest")
            if t.namespaced and body_meta.get("namespace") and body_meta["namespace"] != namespace:
                raise ApiError(400, "the namespace of the provided object does not match the namespace sent "
                                    "on the request", "BadRequest")
            wanted_rv = body_meta.get("resourceVersion")
            if wanted_rv and wanted_rv != meta(current).get("resourceVersion"):
                raise errors.conflict(t.group, t.plural, name)

            if subresource == "status":
                new = copy.deepcopy(current)
                if "status" in body:
                    new["status"] = copy.deepcopy(body["status"])
                else:
                    new.pop("status", None)
            else:
                new = copy.deepcopy(body)
                new.pop("apiVersion", None)
                new.pop("kind", None)
                if "status" in t.subresources:
                    if "status" in current:
                        new["status"] = copy.deepcopy(current["status"])
                    else:
                        new.pop("status", None)
            _fold_string_data(t, new)
            nm = meta(new)
            cm = meta(current)
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation", "name"):
                if k in cm:
                    nm[k] = cm[k]
                else:
                    nm.pop(k, None)
            if t.namespaced:
                nm["namespace"] = namespace
            nm["resourceVersion"] = cm.get("resourceVersion")
            if _spec_part(new) != _spec_part(current):
                nm["generation"] = int(cm.get("generation", 1)) + 1
            if t.key == CRD_KEY and subresource != "status":
                new_type = self.registry.validate_crd(new)
                if not dry_run:
                    self.registry.register_crd(new_type)
                new["status"] = self._crd_status(new)
            if new == current or dry_run:
                return copy.deepcopy(new)
            if cm.get("deletionTimestamp") and not nm.get("finalizers"):
                # The last finalizer is gone: the object goes away now.
                nm["resourceVersion"] = self._next_rv()
                del self._bucket(t)[key]
                self._emit("DELETED", t, new, current)
                self._after_delete(t, new)
                return copy.deepcopy(new)
            nm["resourceVersion"] = self._next_rv()
            self._bucket(t)[key] = new
            self._emit("MODIFIED", t, new, current)
            return copy.deepcopy(new)

    def patch(self, t: ResourceType, version: str, namespace: str | None, name: str, content_type: str,
              body: Any, subresource: str | None = None, dry_run: bool = False,
              field_manager: str | None = None) -> dict[str, Any]:
        with self.lock:
            key = self._ns_key(t, namespace, name)
            current = self._bucket(t).get(key)
            if content_type == "application/apply-patch+yaml":
                if not isinstance(body, dict):
                    raise ApiError(400, "the apply patch must be an object", "BadRequest")
                if not field_manager:
                    raise ApiError(400, "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                                   "BadRequest")
                applied_key = (t.key, key, field_manager)
                if current is None:
                    created = self.create(t, namespace, body, dry_run=dry_run)
                    if not dry_run:
                        self.applied[applied_key] = copy.deepcopy(body)
                    return created
                removals = _removed(self.applied.get(applied_key) or {}, body)
                patched = merge_patch(merge_patch(render(t, version, current), removals), body)
                result = self.update(t, namespace, name, patched, subresource, dry_run)
                if not dry_run:
                    self.applied[applied_key] = copy.deepcopy(body)
                return result
            else:
                if current is None:
                    raise errors.not_found(t.group, t.plural, name)
                base = render(t, version, current)
                if content_type == "application/merge-patch+json":
                    patched = merge_patch(base, body)
                elif content_type == "application/json-patch+json":
                    patched = json_patch(base, body)
                elif content_type == "application/strategic-merge-patch+json":
                    if t.crd is not None:
                        raise ApiError(
                            415, "the body of the request was in an unknown format - accepted media types "
                                 "include: application/json-patch+json, application/merge-patch+json, "
                                 "application/apply-patch+yaml", "UnsupportedMediaType")
                    patched = strategic_merge(base, body)
                else:
                    raise ApiError(415, "the body of the request was in an unknown format - accepted media "
                                        "types include: application/json-patch+json, application/merge-patch+json, "
                                        "application/apply-patch+yaml, application/strategic-merge-patch+json",
                                   "UnsupportedMediaType")
            if not isinstance(patched, dict):
                raise ApiError(422, "the patched object is not an object", "Invalid")
            return self.update(t, namespace, name, patched, subresource, dry_run)

    # ---------------------------------------------------------------- scale subresource

    def scale(self, t: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """The autoscaling/v1 Scale view of an object."""
        obj = self.get(t, namespace, name)
        spec_path, status_path, selector_path = t.scale_paths
        m = meta(obj)
        selector = dotted(obj, selector_path) if selector_path else None
        if selector is None and t.crd is None:
            match = (dotted(obj, "spec.selector.matchLabels") or dotted(obj, "spec.selector") or {})
            selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()) if isinstance(v, str))
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in m},
                "spec": {"replicas": int(dotted(obj, spec_path) or 0)},
                "status": {"replicas": int(dotted(obj, status_path) or 0), "selector": selector or ""}}

    def set_scale(self, t: ResourceType, namespace: str | None, name: str, scale: dict[str, Any],
                  dry_run: bool = False) -> dict[str, Any]:
        with self.lock:
            obj = self.get(t, namespace, name)
            wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != meta(obj).get("resourceVersion"):
                raise errors.conflict(t.group, t.plural, name)
            replicas = (scale.get("spec") or {}).get("replicas", 0)  # Go clients omit a zero
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid("autoscaling", "Scale", name, [("spec.replicas", "Invalid value: must be a "
                                                                                      "non-negative integer")])
            node = obj
            keys = t.scale_paths[0].split(".")
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = replicas
            self.update(t, namespace, name, obj, None, dry_run)
            return self.scale(t, namespace, name)

    # ---------------------------------------------------------------- delete

    def delete(self, t: ResourceType, namespace: str | None, name: str, options: dict[str, Any] | None = None,
               dry_run: bool = False) -> dict[str, Any]:
        """DELETE. Returns the object while finalizers hold it, else a Success Status."""
        options = options or {}
        with self.lock:
            key = self._ns_key(t, namespace, name)
            current = self._bucket(t).get(key)
            if current is None:
                raise errors.not_found(t.group, t.plural, name)
            cm = meta(current)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != cm.get("uid"):
                raise ApiError(409, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                                    f"{cm.get('uid')}", "Conflict", {"name": name, "group": t.group, "kind": t.plural})
            if pre.get("resourceVersion") and pre["resourceVersion"] != cm.get("resourceVersion"):
                raise ApiError(409, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                    f"ResourceVersion in object meta: {cm.get('resourceVersion')}", "Conflict",
                               {"name": name, "group": t.group, "kind": t.plural})
            if dry_run:
                return copy.deepcopy(current)
            if t.key == NAMESPACE_KEY:
                self._empty_namespace(name)
            finalizers = cm.get("finalizers") or []
            if finalizers:
                if cm.get("deletionTimestamp"):
                    return copy.deepcopy(current)
                new = copy.deepcopy(current)
                nm = meta(new)
                nm["deletionTimestamp"] = now_rfc3339()
                nm["deletionGracePeriodSeconds"] = 0
                if t.key == NAMESPACE_KEY:
                    new.setdefault("status", {})["phase"] = "Terminating"
                nm["resourceVersion"] = self._next_rv()
                self._bucket(t)[key] = new
                self._emit("MODIFIED", t, new, current)
                return copy.deepcopy(new)
            gone = copy.deepcopy(current)
            meta(gone)["resourceVersion"] = self._next_rv()
            del self._bucket(t)[key]
            self._emit("DELETED", t, gone, current)
            if options.get("propagationPolicy") != "Orphan":
                self._after_delete(t, gone)
            return errors.success_status({"name": name, "group": t.group, "kind": t.plural, "uid": cm.get("uid")})

    def _after_delete(self, t: ResourceType, gone: dict[str, Any]) -> None:
        """What controllers would do next: CRs of a deleted CRD go, dependents (ownerReferences) go."""
        if t.key == CRD_KEY:
            removed = self.registry.unregister_crd(meta(gone)["name"])
            if removed is not None:
                for (ns, name) in list(self._bucket(removed).keys()):
                    self._force_delete(removed, ns, name)
                self.objects.pop(removed.key, None)
        uid = meta(gone).get("uid")
        for key, bucket in list(self.objects.items()):
            owned_type = self.registry.types.get(key)
            if owned_type is None:
                continue
            for (ns, name), obj in list(bucket.items()):
                refs = meta(obj).get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    self._force_delete(owned_type, ns, name)

    def _force_delete(self, t: ResourceType, namespace: str, name: str) -> None:
        key = (namespace, name)
        current = self._bucket(t).get(key)
        if current is None:
            return
        gone = copy.deepcopy(current)
        meta(gone)["resourceVersion"] = self._next_rv()
        del self._bucket(t)[key]
        self._emit("DELETED", t, gone, current)
        self._after_delete(t, gone)

    def _empty_namespace(self, namespace: str) -> None:
        """The namespace controller's job, done at once: everything in the namespace is deleted."""
        for key, bucket in list(self.objects.items()):
            t = self.registry.types.get(key)
            if t is None or not t.namespaced:
                continue
            for (ns, name) in list(bucket.keys()):
                if ns == namespace:
                    self._force_delete(t, ns, name)

    # ---------------------------------------------------------------- watch

    def watch(self, t: ResourceType, version: str, namespace: str | None, labels: list[LabelRequirement],
              fields: list[FieldRequirement], resource_version: str | None,
              send_initial_events: bool) -> tuple[Watcher, list[dict[str, Any]]]:
        """Register a watcher; returns it and the events to send first."""
        with self.lock:
            w = Watcher(t, version, namespace, labels, fields)
            first: list[dict[str, Any]] = []
            if send_initial_events or resource_version in (None, "", "0"):
                items, _, _, _ = self.list(t, namespace, labels, fields)
                items.sort(key=lambda o: int(meta(o).get("resourceVersion", "0")))
                first = [{"type": "ADDED", "object": render(t, version, o)} for o in items]
                if send_initial_events:
                    first.append({"type": "BOOKMARK", "object": {
                        "apiVersion": t.api_version(version), "kind": t.kind,
                        "metadata": {"resourceVersion": str(self.rv),
                                     "annotations": {"k8s.io/initial-events-end": "true"}}}})
            else:
                try:
                    since = int(resource_version)
                except ValueError:
                    raise ApiError(400, f"invalid resource version: {resource_version!r}", "BadRequest")
                oldest = self.history[0].rv if self.history else self.rv + 1
                if since < oldest - 1 and len(self.history) == self.history.maxlen:
                    first = [{"type": "ERROR", "object": errors.status_object(
                        410, f"too old resource version: {since} ({oldest - 1})", "Expired")}]
                    w.expired = True
                    return w, first
                for ev in self.history:
                    if ev.rv > since:
                        out = w.translate(ev)
                        if out is not None:
                            first.append(out)
            self.watchers.add(w)
            return w, first

    def unwatch(self, w: Watcher) -> None:
        with self.lock:
            self.watchers.discard(w)

    def iter_all(self) -> Iterator[tuple[ResourceType, dict[str, Any]]]:
        with self.lock:
            for key, bucket in self.objects.items():
                t = self.registry.types.get(key)
                if t is None:
                    continue
                for obj in bucket.values():
                    yield t, copy.deepcopy(obj)


def _fold_string_data(t: ResourceType, obj: dict[str, Any]) -> None:
    """Secrets: the API server merges `stringData` into `data` (base64) and drops it."""
    if t.key != ("", "secrets") or "stringData" not in obj:
        return
    data = obj.setdefault("data", {}) or {}
    for key, value in (obj.pop("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    obj["data"] = data
