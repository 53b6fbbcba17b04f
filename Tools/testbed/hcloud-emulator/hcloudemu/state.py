"""The emulated project: resources, actions, the rate-limit budget, faults and the request log.

Everything lives in memory under one lock (`State.lock`); the HTTP handler holds it for the whole
of a request, so each request sees and leaves a consistent project. Times come from `clock`
(time.time by default) so actions finish after `action_delay` seconds without any thread.
"""

import base64
import copy
import hashlib
import ipaddress
import secrets
import threading
import time
from datetime import datetime, timezone

from . import selectors


class APIError(Exception):
    """An error answered in Hetzner's shape: {"error": {"code", "message", "details"}}."""

    def __init__(self, status, code, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self):
        error = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def invalid_input(field, message):
    return APIError(400, "invalid_input", f"invalid input in field '{field}'",
                    {"fields": [{"name": field, "messages": [message]}]})


def not_found(kind, ident):
    return APIError(404, "not_found", f"{kind} with ID '{ident}' not found")


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- the fixed catalog

def _price(location):
    return {"location": location, "included_traffic": 21990232555520,
            "price_hourly": {"net": "0.0060000000", "gross": "0.0071400000"},
            "price_monthly": {"net": "3.7900000000", "gross": "4.5101000000"},
            "price_per_tb_traffic": {"net": "1.0000000000", "gross": "1.1900000000"}}


LOCATIONS = [
    {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE", "city": "Falkenstein",
     "latitude": 50.47612, "longitude": 12.370071, "network_zone": "eu-central"},
    {"id": 2, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE", "city": "Nuremberg",
     "latitude": 49.452102, "longitude": 11.076665, "network_zone": "eu-central"},
    {"id": 3, "name": "hel1", "description": "Helsinki DC Park 1", "country": "FI", "city": "Helsinki",
     "latitude": 60.169855, "longitude": 24.938379, "network_zone": "eu-central"},
]

SERVER_TYPES = [
    # id, name, architecture, cores, memory, disk, cpu_type
    (22, "cx22", "x86", 2, 4.0, 40, "shared"),
    (23, "cx32", "x86", 4, 8.0, 80, "shared"),
    (24, "cx42", "x86", 8, 16.0, 160, "shared"),
    (45, "cax11", "arm", 2, 4.0, 40, "shared"),
    (93, "cax21", "arm", 4, 8.0, 80, "shared"),
    (96, "ccx13", "x86", 2, 8.0, 80, "dedicated"),
]

SYSTEM_IMAGES = [
    # id, name, architecture, os_flavor, os_version
    (161547269, "ubuntu-24.04", "x86", "ubuntu", "24.04"),
    (161547270, "ubuntu-24.04", "arm", "ubuntu", "24.04"),
    (114690387, "debian-12", "x86", "debian", "12"),
    (114690389, "debian-12", "arm", "debian", "12"),
    (59752342, "opensuse-15", "x86", "opensuse", "15.6"),
    (59752343, "opensuse-15", "arm", "opensuse", "15.6"),
]

LOAD_BALANCER_TYPES = [
    {"id": 1, "name": "lb11", "description": "LB11", "max_connections": 10000, "max_services": 5, "max_targets": 25,
     "max_assigned_certificates": 10, "deprecated": None, "prices": [_price(loc["name"]) for loc in LOCATIONS]},
    {"id": 2, "name": "lb21", "description": "LB21", "max_connections": 20000, "max_services": 15, "max_targets": 75,
     "max_assigned_certificates": 25, "deprecated": None, "prices": [_price(loc["name"]) for loc in LOCATIONS]},
]

EPOCH = 1700000000.0


def server_type_object(entry):
    ident, name, arch, cores, memory, disk, cpu = entry
    return {"id": ident, "name": name, "description": name.upper(), "architecture": arch, "cores": cores,
            "memory": memory, "disk": disk, "cpu_type": cpu, "storage_type": "local", "deprecated": False,
            "category": "shared_vcpu" if cpu == "shared" else "dedicated_vcpu",
            "locations": [{"id": loc["id"], "name": loc["name"], "deprecation": None} for loc in LOCATIONS],
            "prices": [_price(loc["name"]) for loc in LOCATIONS]}


def datacenter_object(location):
    ids = [t[0] for t in SERVER_TYPES]
    return {"id": location["id"], "name": f"{location['name']}-dc{location['id'] + 1}",
            "description": f"{location['city']} 1 virtual DC {location['id'] + 1}", "location": copy.deepcopy(location),
            "server_types": {"supported": ids, "available": ids, "available_for_migration": ids}}


def _fingerprint(public_key):
    parts = public_key.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise invalid_input("public_key", "invalid public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise invalid_input("public_key", "invalid public key") from None
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 -- the fingerprint format Hetzner uses
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# ---------------------------------------------------------------- rate limit

class RateLimit:
    """A token bucket as Hetzner describes its limit: `limit` requests, refilled gradually at
    `refill_per_second`; RateLimit-Reset is the Unix time when the bucket is full again."""

    def __init__(self, limit, refill_per_second, clock):
        self.clock = clock
        self.configure(limit, limit, refill_per_second)

    def configure(self, limit, remaining, refill_per_second):
        self.limit = int(limit)
        self.level = float(min(remaining, limit))
        self.refill = float(refill_per_second)
        self.at = self.clock()

    def _update(self):
        now = self.clock()
        self.level = min(self.limit, self.level + (now - self.at) * self.refill)
        self.at = now

    def take(self):
        """Takes one request from the budget; False when none is left."""
        self._update()
        if self.level >= 1:
            self.level -= 1
            return True
        return False

    def headers(self):
        self._update()
        remaining = int(self.level)
        missing = self.limit - self.level
        reset = self.at + (missing / self.refill if self.refill > 0 else 3600)
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(int(reset + 0.999))}


# ---------------------------------------------------------------- the project

COLLECTIONS = ["servers", "images", "ssh_keys", "load_balancers", "networks", "firewalls", "volumes",
               "placement_groups"]


class State:
    def __init__(self, ipv4_pool, action_delay=0.05, rate_limit=3600, refill_per_second=1.0, clock=time.time,
                 log_limit=20000):
        self.lock = threading.RLock()
        self.clock = clock
        self.ipv4_pool = list(ipv4_pool)
        self.defaults = {"action_delay": action_delay, "rate_limit": rate_limit, "refill_per_second": refill_per_second}
        self.log_limit = log_limit
        self.rate = RateLimit(rate_limit, refill_per_second, clock)
        self.reset()

    def reset(self):
        with self.lock:
            self.action_delay = self.defaults["action_delay"]
            self.rate.configure(self.defaults["rate_limit"], self.defaults["rate_limit"],
                                self.defaults["refill_per_second"])
            self.next_id = 1000
            self.next_action_id = 100000
            self.items = {name: {} for name in COLLECTIONS}
            self.actions = {}
            self.faults = []
            self.log = []
            self.counts = {}
            self.rate_limited = 0
            for ident, name, arch, flavor, version in SYSTEM_IMAGES:
                self.items["images"][ident] = {
                    "id": ident, "type": "system", "status": "available", "name": name, "description": name.capitalize(),
                    "image_size": None, "disk_size": 5, "created": iso(EPOCH), "created_from": None, "bound_to": None,
                    "os_flavor": flavor, "os_version": version, "rapid_deploy": True, "protection": {"delete": False},
                    "deprecated": None, "deleted": None, "labels": {}, "architecture": arch}

    # ------------------------------------------------------------ helpers

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def action(self, command, resources, error=None):
        """A new action, running until `action_delay` seconds have passed."""
        self.next_action_id += 1
        now = self.clock()
        fault = self.take_action_fault(command)
        act = {"id": self.next_action_id, "command": command, "status": "running", "progress": 0, "started": iso(now),
               "finished": None, "resources": [{"id": i, "type": t} for t, i in resources], "error": None,
               "_started": now, "_fails": fault or error}
        self.actions[act["id"]] = act
        return act

    def action_view(self, act):
        done = self.clock() >= act["_started"] + self.action_delay
        view = {k: v for k, v in act.items() if not k.startswith("_")}
        if done:
            view["progress"] = 100
            view["finished"] = iso(act["_started"] + self.action_delay)
            if act["_fails"]:
                view["status"] = "error"
                view["error"] = {"code": act["_fails"].get("code", "action_failed"),
                                 "message": act["_fails"].get("message", "Action failed")}
            else:
                view["status"] = "success"
        return view

    def action_done(self, act_id):
        act = self.actions.get(act_id)
        return act is None or self.clock() >= act["_started"] + self.action_delay

    def get(self, collection, ident, kind):
        try:
            return self.items[collection][int(ident)]
        except (KeyError, ValueError):
            raise not_found(kind, ident) from None

    def by_id_or_name(self, collection, value, field, predicate=lambda item: True):
        value = str(value)
        for item in self.items[collection].values():
            if (str(item["id"]) == value or item.get("name") == value) and predicate(item):
                return item
        raise invalid_input(field, f"{field} {value!r} not found")

    def unique_name(self, collection, name):
        if any(item.get("name") == name for item in self.items[collection].values()):
            raise APIError(409, "uniqueness_error", "name is already used", {"fields": [{"name": "name"}]})

    # ------------------------------------------------------------ faults

    def take_fault(self, method, path):
        for fault in self.faults:
            if fault.get("kind", "response") != "response":
                continue
            if fault.get("method", method).upper() != method or not path.startswith(fault.get("path", "/")):
                continue
            if fault.get("count", 1) <= 0:
                continue
            fault["count"] = fault.get("count", 1) - 1
            return fault
        return None

    def take_action_fault(self, command):
        for fault in self.faults:
            if fault.get("kind") == "action" and fault.get("command", command) == command and fault.get("count", 1) > 0:
                fault["count"] = fault.get("count", 1) - 1
                return fault
        return None

    # ------------------------------------------------------------ request log

    def record(self, entry):
        key = f"{entry['method']} {entry['route']}"
        self.counts[key] = self.counts.get(key, 0) + 1
        self.log.append(entry)
        if len(self.log) > self.log_limit:
            del self.log[: len(self.log) - self.log_limit]

    # ------------------------------------------------------------ listing

    def list(self, collection, query, filters=None, view=lambda item: item):
        items = list(self.items[collection].values())
        name = query.get("name", [None])[-1]
        if name is not None:
            items = [i for i in items if i.get("name") == name]
        if "label_selector" in query:
            try:
                requirements = selectors.parse(query["label_selector"][-1])
            except ValueError as error:
                raise invalid_input("label_selector", str(error)) from None
            items = [i for i in items if selectors.matches(requirements, i.get("labels"))]
        for key, test in (filters or {}).items():
            if key in query:
                wanted = set(query[key])
                items = [i for i in items if test(i, wanted)]
        items.sort(key=lambda i: i["id"])
        for spec in reversed(query.get("sort", [])):
            field, _, direction = spec.partition(":")
            if field not in ("id", "name", "created"):
                raise invalid_input("sort", f"invalid sort field {field!r}")
            items.sort(key=lambda i: (i.get(field) is None, i.get(field) or ""), reverse=direction == "desc")
        page = _int(query, "page", 1, minimum=1)
        per_page = min(_int(query, "per_page", 25, minimum=1), 50)
        total = len(items)
        last = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        meta = {"pagination": {"page": page, "per_page": per_page, "previous_page": page - 1 if page > 1 else None,
                               "next_page": page + 1 if page < last else None, "last_page": last,
                               "total_entries": total}}
        return [view(i) for i in chunk], meta


def _int(query, key, default, minimum):
    if key not in query:
        return default
    try:
        value = int(query[key][-1])
    except ValueError:
        raise invalid_input(key, "must be an integer") from None
    if value < minimum:
        raise invalid_input(key, f"must be at least {minimum}")
    return value


def pool_from_spec(spec):
    """`127.0.1.1-127.0.1.254` or a CIDR (hosts only) or a comma list."""
    addresses = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            first, last = (ipaddress.IPv4Address(x.strip()) for x in part.split("-", 1))
            addresses += [str(ipaddress.IPv4Address(n)) for n in range(int(first), int(last) + 1)]
        elif "/" in part:
            addresses += [str(a) for a in ipaddress.IPv4Network(part, strict=False).hosts()]
        elif part:
            addresses.append(str(ipaddress.IPv4Address(part)))
    return addresses


def root_password():
    return secrets.token_urlsafe(12)
