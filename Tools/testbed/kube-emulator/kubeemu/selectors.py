"""Label selectors (=, ==, !=, in, notin, exists, !key, >, <) and field selectors (=, ==, !=)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ApiError

_KEY = r"[A-Za-z0-9_./-]+"
_VALUE = r"[A-Za-z0-9_.-]*"
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_CMP_RE = re.compile(rf"^({_KEY})\s*(==|!=|=|>|<)\s*({_VALUE})$")
_KEY_RE = re.compile(rf"^{_KEY}$")


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op in ("gt", "lt"):
            try:
                number = int(value) if present else None
            except (TypeError, ValueError):
                return False
            if number is None:
                return False
            bound = int(self.values[0])
            return number > bound if self.op == "gt" else number < bound
        return False


def parse_label_selector(text: str | None) -> list[LabelRequirement]:
    if text is None or not text.strip():
        return []
    requirements = []
    for part in _split_top_level(text):
        if not part:
            raise ApiError(400, f"unable to parse requirement: empty requirement in selector {text!r}")
        if part.startswith("!"):
            key = part[1:].strip()
            if not _KEY_RE.match(key):
                raise ApiError(400, f"unable to parse requirement: invalid label key {key!r}")
            requirements.append(LabelRequirement(key, "!exists"))
            continue
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",")) if m.group(3).strip() else ()
            for v in values:
                if not re.fullmatch(_VALUE, v):
                    raise ApiError(400, f"unable to parse requirement: invalid label value {v!r}")
            requirements.append(LabelRequirement(m.group(1), m.group(2), values))
            continue
        m = _CMP_RE.match(part)
        if m:
            op = {"==": "=", ">": "gt", "<": "lt"}.get(m.group(2), m.group(2))
            if op in ("gt", "lt") and not re.fullmatch(r"-?[0-9]+", m.group(3)):
                raise ApiError(400, f"unable to parse requirement: for 'gt', 'lt' operators, "
                                    f"the value must be an integer: {m.group(3)!r}")
            requirements.append(LabelRequirement(m.group(1), op, (m.group(3),)))
            continue
        if _KEY_RE.match(part):
            requirements.append(LabelRequirement(part, "exists"))
            continue
        raise ApiError(400, f"unable to parse requirement: {part!r}")
    return requirements


def labels_match(requirements: list[LabelRequirement], obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # = or !=
    value: str


def parse_field_selector(text: str | None) -> list[FieldRequirement]:
    if text is None or not text.strip():
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        for op in ("!=", "==", "="):
            if op in part:
                field, value = part.split(op, 1)
                out.append(FieldRequirement(field.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise ApiError(400, f"invalid selector: '{text}'; can't understand '{part}'")
    return out


def dotted(obj: Any, path: str) -> Any:
    """Value at a dotted path (`status.phase`), or None."""
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def field_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return ""
    return str(value)


FieldGetter = Callable[[dict[str, Any], str], "str | None"]


def fields_match(requirements: list[FieldRequirement], obj: dict[str, Any], getter: FieldGetter) -> bool:
    for r in requirements:
        actual = getter(obj, r.field)
        if actual is None:  # unsupported field: checked before listing, so never here
            return False
        if (actual == r.value) != (r.op == "="):
            return False
    return True
