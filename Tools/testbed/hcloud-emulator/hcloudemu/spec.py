"""Checks requests and responses against the official Hetzner Cloud OpenAPI spec (OpenAPI 3.0.3).

`SpecChecker(spec_path)` finds the operation of a (method, path) by the spec's path templates and
validates, with openapi-schema-validator's OAS 3.0 validator (`nullable`, `format`):

- responses: the body against the schema of the status (exact, else `4xx`/`5xx`), and that the
  status is one the operation declares;
- requests: every query parameter is one the operation declares and its values fit its schema
  (arrays may repeat), required parameters are present, the JSON body fits the requestBody schema,
  and (strict) the body has no top-level field the schema does not name.

Used by validate.py (over the emulator's request log) and test_emulator.py.
"""

import json
import os
import re
from pathlib import Path

from openapi_schema_validator import OAS30Validator

DEFAULT_SPEC = Path(__file__).resolve().parents[4] / ".." / "shared" / "specs" / "hcloud-openapi.json"


def spec_path():
    """KH_HCLOUD_SPEC, else ../shared/specs/hcloud-openapi.json beside the repository."""
    path = Path(os.environ.get("KH_HCLOUD_SPEC") or DEFAULT_SPEC).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"the Hetzner Cloud OpenAPI spec is not at {path} (set KH_HCLOUD_SPEC)")
    return path


class SpecChecker:
    def __init__(self, path=None):
        self.spec = json.loads(Path(path or spec_path()).read_text())
        self.components = _nullable_all_of(self.spec["components"])
        self.operations = []
        for template, item in self.spec["paths"].items():
            if template.startswith("/storage_boxes") or template.startswith("/zones"):
                continue  # served by api.hetzner.com, not the Cloud API
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$")
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            self.operations.append((literal, template, pattern, item))
        self.operations.sort(key=lambda op: -op[0])  # /servers/actions before /servers/{id}
        self._validators = {}

    def _validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            self._validators[key] = OAS30Validator({**schema, "components": self.components})
        return self._validators[key]

    def _resolve(self, schema):
        while "$ref" in schema:
            schema = self.components["schemas"][schema["$ref"].split("/")[-1]]
        return schema

    def operation(self, method, path):
        for _, template, pattern, item in self.operations:
            if pattern.match(path) and method.lower() in item:
                return template, item[method.lower()]
        return None, None

    def _errors(self, schema, value, where):
        return [f"{where}: {'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                for e in self._validator(schema).iter_errors(value)]

    def check_response(self, method, path, status, body):
        template, op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in the spec"]
        responses = op["responses"]
        key = str(status) if str(status) in responses else f"{str(status)[0]}xx"
        if key not in responses:
            return [f"{method} {template}: status {status} is not declared (declared: {sorted(responses)})"]
        content = responses[key].get("content", {}).get("application/json")
        if content is None:
            return [] if body is None else [f"{method} {template} {status}: the spec declares no body, got one"]
        if body is None:
            return [f"{method} {template} {status}: a body is required"]
        return self._errors(content["schema"], body, f"{method} {template} {status}")

    def check_request(self, method, path, query, body, strict=True):
        template, op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in the spec"]
        problems = []
        params = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
        for name, param in params.items():
            if param.get("required") and name not in query:
                problems.append(f"{method} {template}: required query parameter {name!r} missing")
        for name, values in query.items():
            param = params.get(name)
            if param is None:
                problems.append(f"{method} {template}: query parameter {name!r} is not in the spec")
                continue
            schema = self._resolve(param.get("schema", {}))
            if schema.get("type") != "array" and len(values) > 1:
                problems.append(f"{method} {template}: query parameter {name!r} repeated but not an array")
            item_schema = self._resolve(schema.get("items", {})) if schema.get("type") == "array" else schema
            for raw in values:
                problems += self._errors(item_schema, _coerce(raw, item_schema), f"{method} {template} ?{name}")
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            if body not in (None, {}, b"", ""):
                problems.append(f"{method} {template}: the spec declares no request body, got one")
            return problems
        if body is None:
            if op["requestBody"].get("required"):
                problems.append(f"{method} {template}: request body required")
            return problems
        problems += self._errors(content["schema"], body, f"{method} {template} body")
        schema = self._resolve(content["schema"])
        if strict and isinstance(body, dict) and "properties" in schema:
            extra = sorted(set(body) - set(schema["properties"]))
            if extra:
                problems.append(f"{method} {template} body: fields not in the spec: {extra}")
        return problems


def _nullable_all_of(node):
    """The spec writes nullable references as `{"allOf": [{"$ref": …}], "nullable": true}` (e.g. an
    action's `error`, a server's `iso`), meaning "this object or null" as its descriptions and examples
    say; OpenAPI 3.0's `nullable` does not reach into `allOf`, so null would fail. Each such schema
    becomes `{"anyOf": [<the allOf>, {"enum": [null]}]}`; nothing else changes."""
    if isinstance(node, list):
        return [_nullable_all_of(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_all_of(value) for key, value in node.items()}
    if node.get("nullable") is True and "allOf" in node and "type" not in node:
        rest = {k: v for k, v in node.items() if k not in ("allOf", "nullable")}
        return {**rest, "anyOf": [{"allOf": node["allOf"]}, {"enum": [None]}]}
    return node


def _coerce(raw, schema):
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw
