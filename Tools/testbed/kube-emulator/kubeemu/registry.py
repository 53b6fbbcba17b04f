"""Resource types: the built-in kinds, the kinds that applied CRDs add, discovery and OpenAPI v3."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid
from .selectors import dotted, field_string

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ResourceType:
    group: str
    versions: list[str]  # served versions, preferred first
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subresources: set[str] = field(default_factory=set)  # status, scale, log
    selectable_fields: list[str] = field(default_factory=list)  # extra field selectors
    printer_columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per version
    crd: str | None = None  # the CRD's name when defined by one
    # scale subresource: (spec replicas, status replicas, label selector) dotted paths
    scale_paths: tuple[str, str, str] = ("spec.replicas", "status.replicas", "")

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def field_value(self, obj: dict[str, Any], path: str) -> str | None:
        """The value a field selector compares, or None when the API does not support the field."""
        if path == "metadata.name":
            return field_string(dotted(obj, path))
        if path == "metadata.namespace":
            return field_string(dotted(obj, path)) if self.namespaced else ""
        if path in _BUILTIN_FIELDS.get(self.key, set()) or path in self.selectable_fields:
            if self.key == ("", "events") and path == "source":
                return field_string(dotted(obj, "source.component") or obj.get("reportingComponent"))
            return field_string(dotted(obj, path))
        return None


# Field selectors the real API server supports beyond metadata.name and metadata.namespace.
_BUILTIN_FIELDS: dict[tuple[str, str], set[str]] = {
    ("", "pods"): {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                   "status.nominatedNodeName"},
    ("", "events"): {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion",
                     "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                     "reportingComponent", "source", "type"},
    ("", "secrets"): {"type"},
    ("", "nodes"): {"spec.unschedulable"},
    ("", "namespaces"): {"status.phase"},
    ("", "replicationcontrollers"): {"status.replicas"},
    ("apps", "replicasets"): {"status.replicas"},
    ("batch", "jobs"): {"status.successful"},
}


def _t(group: str, version: str, plural: str, kind: str, namespaced: bool = True,
       short: tuple[str, ...] = (), sub: tuple[str, ...] = (), cats: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(group, [version], plural, kind.lower(), kind, namespaced, list(short),
                        list(cats), set(sub))


BUILTIN_TYPES: list[ResourceType] = [
    _t("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",)),
    _t("", "v1", "pods", "Pod", True, ("po",), ("status", "log"), ("all",)),
    _t("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    _t("", "v1", "secrets", "Secret"),
    _t("", "v1", "services", "Service", True, ("svc",), ("status",), ("all",)),
    _t("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    _t("", "v1", "events", "Event", True, ("ev",)),
    _t("", "v1", "nodes", "Node", False, ("no",), ("status",)),
    _t("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    _t("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), ("status",)),
    _t("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), ("status",)),
    _t("", "v1", "replicationcontrollers", "ReplicationController", True, ("rc",), ("status", "scale"), ("all",)),
    _t("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",), ("status",)),
    _t("", "v1", "limitranges", "LimitRange", True, ("limits",)),
    _t("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), ("all",)),
    _t("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"), ("all",)),
    _t("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), ("all",)),
    _t("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"), ("all",)),
    _t("apps", "v1", "controllerrevisions", "ControllerRevision"),
    _t("batch", "v1", "jobs", "Job", True, (), ("status",), ("all",)),
    _t("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",), ("all",)),
    _t("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",),
       ("status",), ("all",)),
    _t("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    _t("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), ("status",)),
    _t("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    _t("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    _t("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _t("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _t("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _t("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _t("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    _t("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
    _t("coordination.k8s.io", "v1", "leases", "Lease"),
    _t("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ("crd", "crds"), ("status",), ("api-extensions",)),
]

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version order: GA > beta > alpha, higher numbers first; others last by name."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    stability = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stability, -int(m.group(1)), -int(m.group(3) or 0), version)


class Registry:
    def __init__(self) -> None:
        self.types: dict[tuple[str, str], ResourceType] = {}
        for t in BUILTIN_TYPES:
            self.types[t.key] = t

    # ---------------------------------------------------------------- lookup

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        t = self.types.get((group, plural))
        if t is None or version not in t.versions:
            return None
        return t

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred first (core group is '')."""
        out: dict[str, set[str]] = {}
        for t in self.types.values():
            out.setdefault(t.group, set()).update(t.versions)
        return {g: sorted(vs, key=_version_priority) for g, vs in out.items()}

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        return sorted((t for t in self.types.values() if t.group == group and version in t.versions),
                      key=lambda t: t.plural)

    # ---------------------------------------------------------------- CRDs

    @staticmethod
    def validate_crd(obj: dict[str, Any]) -> ResourceType:
        """The resource type a CRD defines; 422 when the CRD is not acceptable."""
        name = (obj.get("metadata") or {}).get("name", "")
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        plural = names.get("plural", "")
        causes = []
        if not group:
            causes.append(("spec.group", "Required value"))
        if not plural:
            causes.append(("spec.names.plural", "Required value"))
        if not names.get("kind"):
            causes.append(("spec.names.kind", "Required value"))
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.append(("spec.scope", 'Unsupported value: must be "Namespaced" or "Cluster"'))
        if plural and group and name != f"{plural}.{group}":
            causes.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
        versions = spec.get("versions") or []
        served = [v for v in versions if v.get("served")]
        if not versions:
            causes.append(("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
        elif sum(1 for v in versions if v.get("storage")) != 1:
            causes.append(("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
        if versions and not served:
            causes.append(("spec.versions", "Invalid value: must serve at least one version"))
        if causes:
            raise invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes)
        subresources: set[str] = set()
        selectable: list[str] = []
        columns: dict[str, list[dict[str, Any]]] = {}
        scale_paths = ("spec.replicas", "status.replicas", "")
        for v in served:
            sub = v.get("subresources") or {}
            if "status" in sub:
                subresources.add("status")
            if isinstance(sub.get("scale"), dict):
                subresources.add("scale")
                sc = sub["scale"]
                scale_paths = (str(sc.get("specReplicasPath", ".spec.replicas")).lstrip("."),
                               str(sc.get("statusReplicasPath", ".status.replicas")).lstrip("."),
                               str(sc.get("labelSelectorPath", "")).lstrip("."))
            for f in v.get("selectableFields") or []:
                path = (f.get("jsonPath") or "").lstrip(".")
                if path and path not in selectable:
                    selectable.append(path)
            columns[v["name"]] = list(v.get("additionalPrinterColumns") or [])
        return ResourceType(
            group=group,
            versions=sorted((v["name"] for v in served), key=_version_priority),
            plural=plural,
            singular=names.get("singular") or names["kind"].lower(),
            kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            short_names=list(names.get("shortNames") or []),
            categories=list(names.get("categories") or []),
            subresources=subresources,
            selectable_fields=selectable,
            printer_columns=columns,
            crd=name,
            scale_paths=scale_paths,
        )

    def register_crd(self, t: ResourceType) -> None:
        existing = self.types.get(t.key)
        if existing is not None and existing.crd is None:
            raise invalid("apiextensions.k8s.io", "CustomResourceDefinition", t.crd or "",
                          [("spec.group", "Invalid value: the group/resource is built in")])
        self.types[t.key] = t

    def unregister_crd(self, crd_name: str) -> ResourceType | None:
        for key, t in list(self.types.items()):
            if t.crd == crd_name:
                del self.types[key]
                return t
        return None

    # ---------------------------------------------------------------- discovery

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = []
        for group in sorted(g for g in self.group_versions() if g):
            doc = self.api_group(group)
            assert doc is not None
            doc = {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")}
            groups.append(doc)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        types = self.types_in(group, version)
        if not types:
            return None
        resources = []
        for t in types:
            resources.append({
                "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ALL_VERBS, "shortNames": t.short_names,
                "categories": t.categories,
                "storageVersionHash": hashlib.sha256(f"{t.group}/{t.plural}".encode()).hexdigest()[:11],
            })
            for sub in sorted(t.subresources):
                verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
                kind = "Scale" if sub == "scale" else ("Pod" if sub == "log" else t.kind)
                entry = {"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                         "kind": kind, "verbs": verbs}
                if sub == "scale":
                    entry.update({"group": "autoscaling", "version": "v1"})
                resources.append(entry)
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}

    # ---------------------------------------------------------------- OpenAPI v3
    #
    # kubectl (apply, create, replace with the default --validate=strict) asks OpenAPI v3 whether
    # the server supports the fieldValidation query parameter for the kind's PATCH operation. When
    # it does, kubectl leaves validation to the server and does no client-side schema validation.
    # So every served kind gets a PATCH operation tagged with its group/version/kind and that
    # parameter. No schemas are published (kubectl explain has nothing to show).

    def openapi_v3_doc(self, group: str, version: str) -> dict[str, Any] | None:
        types = self.types_in(group, version)
        if not types:
            return None
        prefix = f"/apis/{group}/{version}" if group else "/api/v1"
        paths: dict[str, Any] = {}
        for t in types:
            base = f"{prefix}/namespaces/{{namespace}}/{t.plural}" if t.namespaced else f"{prefix}/{t.plural}"
            gvk = {"group": t.group, "version": version, "kind": t.kind}
            params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
            content_types = ["application/json-patch+json", "application/merge-patch+json",
                             "application/apply-patch+yaml"]
            ok = {"200": {"description": "OK"}}
            paths[f"{base}/{{name}}"] = {
                "get": {"operationId": f"read{t.kind}", "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "patch": {"operationId": f"patch{t.kind}", "x-kubernetes-action": "patch",
                          "x-kubernetes-group-version-kind": gvk, "parameters": params,
                          "requestBody": {"content": {c: {"schema": {"type": "object"}} for c in content_types}},
                          "responses": ok},
            }
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes (kh kube emulator)", "version": "v1.32.0"},
                "paths": paths, "components": {"schemas": {}}}

    def openapi_v3_root(self) -> dict[str, Any]:
        paths = {}
        for group, versions in sorted(self.group_versions().items()):
            for version in versions:
                rel = f"apis/{group}/{version}" if group else "api/v1"
                digest = hashlib.sha256(json.dumps(self.openapi_v3_doc(group, version), sort_keys=True)
                                        .encode()).hexdigest()[:32].upper()
                paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={digest}"}
        return {"paths": paths}
