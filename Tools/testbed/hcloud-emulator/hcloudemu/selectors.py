"""Hetzner label selectors: the Kubernetes-style grammar the Hetzner Cloud API documents.

    k=v  k==v  k!=v  k  !k  k in (a,b)  k notin (a,b)     comma = AND

A comma inside parentheses belongs to the set. `parse` raises ValueError on bad input (the
server answers 400 invalid_input); `matches` tests a parsed selector against a labels dict.
"""

import re

_KEY = r"[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


def _split(text):
    """Splits on commas outside parentheses."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced ')'")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise ValueError("unbalanced '('")
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _key(text):
    if not _KEY_RE.match(text):
        raise ValueError(f"invalid label key {text!r}")
    return text


def _value(text):
    if not _VALUE_RE.match(text):
        raise ValueError(f"invalid label value {text!r}")
    return text


def parse(text):
    """A list of (operator, key, values) requirements; an empty selector matches everything."""
    if text is None or text.strip() == "":
        return []
    requirements = []
    for part in _split(text):
        if not part:
            raise ValueError("empty requirement")
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            values = [v.strip() for v in m.group(3).split(",")]
            if not values or any(v == "" for v in values):
                raise ValueError(f"empty value in set of {part!r}")
            requirements.append((m.group(2), _key(m.group(1)), {_value(v) for v in values}))
            continue
        for op in ("!=", "==", "="):
            if op in part:
                key, value = part.split(op, 1)
                requirements.append(("!=" if op == "!=" else "=", _key(key.strip()), {_value(value.strip())}))
                break
        else:
            if part.startswith("!"):
                requirements.append(("!", _key(part[1:].strip()), set()))
            else:
                requirements.append(("exists", _key(part), set()))
    return requirements


def matches(requirements, labels):
    labels = labels or {}
    for op, key, values in requirements:
        present = key in labels
        value = labels.get(key)
        if op == "=" and not (present and value in values):
            return False
        if op == "!=" and present and value in values:
            return False
        if op == "in" and not (present and value in values):
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True
