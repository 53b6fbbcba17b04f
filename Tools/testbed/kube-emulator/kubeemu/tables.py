"""Server-side printing (meta.k8s.io Table) for `kubectl get` without -o: names, ages, CRD printer
columns (a JSONPath subset) and a few built-in columns."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from .registry import ResourceType

_TOKEN = re.compile(r'\.((?:[A-Za-z0-9_$/-]|\\\.)+)|\[(\d+|\*)\]|\[\?\(@((?:\.[A-Za-z0-9_-]+)+)\s*(==|!=)\s*["\']([^"\']*)["\']\)\]'
                    r'|\.?\[["\']([^"\']+)["\']\]')


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Values at a printer-column JSONPath: .a.b, [0], [*], [?(@.type=="Ready")], ['dotted.key']."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    nodes = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        field, index, filter_path, op, value, quoted = m.groups()
        nxt: list[Any] = []
        for node in nodes:
            if field is not None or quoted is not None:
                key = field.replace("\\.", ".") if field is not None else quoted
                if isinstance(node, dict) and key in node:
                    nxt.append(node[key])
            elif index is not None:
                if isinstance(node, dict) and index == "*":
                    nxt.extend(node.values())
                elif isinstance(node, list):
                    if index == "*":
                        nxt.extend(node)
                    elif int(index) < len(node):
                        nxt.append(node[int(index)])
            elif filter_path is not None and isinstance(node, list):
                for item in node:
                    actual = item
                    for key in filter_path.strip(".").split("."):
                        actual = actual.get(key) if isinstance(actual, dict) else None
                    if (str(actual) == value) == (op == "=="):
                        nxt.append(item)
        nodes = nxt
    return nodes


def human_age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<invalid>"
    s = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 730:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d"


def _cell(values: list[Any], kind: str) -> Any:
    if not values:
        return None  # the real CRD table leaves the cell empty (nil); kubectl prints it
    if kind == "date":
        return human_age(str(values[0]))
    if kind in ("integer", "number") and len(values) == 1:
        return values[0]
    return ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)


def _pod_cells(obj: dict[str, Any]) -> list[Any]:
    """READY, STATUS, RESTARTS the way kubectl's pod printer derives them from status."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = restarts = 0
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for s in reversed(statuses):
        restarts += int(s.get("restartCount") or 0)
        state = s.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated:
            reason = f"Signal:{terminated['signal']}" if terminated.get("signal") else \
                f"ExitCode:{terminated.get('exitCode', 0)}"
        elif s.get("ready") and "running" in state:
            ready += 1
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [f"{ready}/{len(spec.get('containers') or [])}", reason, restarts]


def _event_table(objs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Events print without a leading name column: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE."""
    columns = [{"name": n, "type": "string", "format": "", "description": "", "priority": p}
               for n, p in (("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Message", 0),
                            ("Name", 1))]
    rows = []
    for o in objs:
        involved = o.get("involvedObject") or {}
        last = o.get("lastTimestamp") or o.get("eventTime") or (o.get("metadata") or {}).get("creationTimestamp")
        rows.append([human_age(str(last)[:19] + "Z" if last else None), o.get("type", ""), o.get("reason", ""),
                     f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", o.get("message", ""),
                     (o.get("metadata") or {}).get("name", "")])
    return columns, rows


_BUILTIN: dict[tuple[str, str], tuple[list[tuple[str, str, int]], Any]] = {
    ("", "pods"): ([("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "integer", 0)], _pod_cells),
    ("", "namespaces"): ([("Status", "string", 0)], lambda o: [(o.get("status") or {}).get("phase", "")]),
    ("", "configmaps"): ([("Data", "integer", 0)], lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})]),
    ("", "secrets"): ([("Type", "string", 0), ("Data", "integer", 0)],
                      lambda o: [o.get("type", "Opaque"), len(o.get("data") or {})]),
    ("apps", "deployments"): ([("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0)],
                              lambda o: [f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
                                         f"{(o.get('spec') or {}).get('replicas', 1)}",
                                         (o.get("status") or {}).get("updatedReplicas", 0),
                                         (o.get("status") or {}).get("availableReplicas", 0)]),
    ("batch", "jobs"): ([("Completions", "string", 0)],
                        lambda o: [f"{(o.get('status') or {}).get('succeeded', 0)}/"
                                   f"{(o.get('spec') or {}).get('completions', 1)}"]),
    ("", "nodes"): ([("Status", "string", 0), ("Version", "string", 0)],
                    lambda o: [next(("Ready" if c.get("status") == "True" else "NotReady"
                                     for c in (o.get("status") or {}).get("conditions") or []
                                     if c.get("type") == "Ready"), "Unknown"),
                               ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")]),
}


def table_for(t: ResourceType, version: str, objs: list[dict[str, Any]], list_meta: dict[str, Any],
              query: dict[str, str]) -> dict[str, Any]:
    columns: list[dict[str, Any]] = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                                      "description": "Name must be unique within a namespace."}]
    printer = t.printer_columns.get(version) or []
    builtin = _BUILTIN.get(t.key)
    if t.crd is not None and printer:
        for c in printer:
            columns.append({"name": c.get("name", ""), "type": c.get("type", "string"),
                            "format": c.get("format", ""), "description": c.get("description", ""),
                            "priority": int(c.get("priority", 0))})
    elif builtin is not None:
        for name, kind, priority in builtin[0]:
            columns.append({"name": name, "type": kind, "format": "", "description": "", "priority": priority})
        columns.append({"name": "Age", "type": "string", "format": "", "priority": 0,
                        "description": "CreationTimestamp is a timestamp representing the server time when this "
                                       "object was created."})
    else:
        columns.append({"name": "Age", "type": "date", "format": "", "priority": 0,
                        "description": "CreationTimestamp is a timestamp representing the server time when this "
                                       "object was created."})
    include = query.get("includeObject", "Metadata")
    event_rows: list[list[Any]] = []
    if t.key == ("", "events"):
        columns, event_rows = _event_table(objs)
    rows = []
    for index, obj in enumerate(objs):
        m = obj.get("metadata") or {}
        cells: list[Any] = [m.get("name", "")]
        if event_rows:
            cells = event_rows[index]
        elif t.crd is not None and printer:
            cells += [_cell(jsonpath(obj, c.get("jsonPath", "")), c.get("type", "string")) for c in printer]
        elif builtin is not None:
            cells += builtin[1](obj) + [human_age(m.get("creationTimestamp"))]
        else:
            cells.append(human_age(m.get("creationTimestamp")))
        row: dict[str, Any] = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": m}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": columns, "rows": rows}
