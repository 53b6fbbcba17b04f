"""The emulated endpoints: one function per route, each (state, groups, query, body) -> (status, body).

Every handler runs with `state.lock` held. Shapes follow the official spec's response schemas
(test_emulator.py validates them); what is left out is listed in ../README.md.
"""

import copy
import ipaddress
import re

from .state import (LOAD_BALANCER_TYPES, LOCATIONS, SERVER_TYPES, APIError, datacenter_object, invalid_input, iso,
                    not_found, root_password, server_type_object, _fingerprint)

ROUTES = []


def route(method, pattern):
    def register(function):
        ROUTES.append((method, re.compile("^" + pattern + "$"), function))
        return function
    return register


def dispatch(state, method, path, query, body):
    """The handler's answer, or APIError; the route template is returned for the request log."""
    for m, pattern, function in ROUTES:
        match = pattern.match(path)
        if match and m == method:
            return function(state, *match.groups(), query=query, body=body), pattern.pattern[1:-1]
    for m, pattern, _ in ROUTES:
        if pattern.match(path):
            raise APIError(405, "method_not_allowed", f"method {method} not allowed on {path}")
    raise APIError(404, "not_found", f"no route for {path}")


def require(body, *fields):
    if not isinstance(body, dict):
        raise APIError(400, "json_error", "request body must be a JSON object")
    for field in fields:
        if field not in body or body[field] is None:
            raise invalid_input(field, "Missing data for required field.")


def labels_of(body):
    labels = (body or {}).get("labels", {}) or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise invalid_input("labels", "labels must be an object of strings")
    return dict(labels)


def location_of(state, value, field="location"):
    for loc in LOCATIONS:
        if str(loc["id"]) == str(value) or loc["name"] == value:
            return copy.deepcopy(loc)
    raise invalid_input(field, f"location {value!r} not found")


# ---------------------------------------------------------------- catalog

@route("GET", r"/locations")
def list_locations(state, query, body):
    items = [l for l in LOCATIONS if "name" not in query or l["name"] == query["name"][-1]]
    return 200, {"locations": items, "meta": _single_page(len(items))}


@route("GET", r"/datacenters")
def list_datacenters(state, query, body):
    items = [datacenter_object(l) for l in LOCATIONS]
    items = [d for d in items if "name" not in query or d["name"] == query["name"][-1]]
    return 200, {"datacenters": items, "recommendation": items[0]["id"], "meta": _single_page(len(items))}


@route("GET", r"/server_types")
def list_server_types(state, query, body):
    items = [server_type_object(t) for t in SERVER_TYPES]
    items = [t for t in items if "name" not in query or t["name"] == query["name"][-1]]
    return 200, {"server_types": items, "meta": _single_page(len(items))}


@route("GET", r"/server_types/(\d+)")
def get_server_type(state, ident, query, body):
    for t in SERVER_TYPES:
        if t[0] == int(ident):
            return 200, {"server_type": server_type_object(t)}
    raise not_found("server_type", ident)


@route("GET", r"/load_balancer_types")
def list_load_balancer_types(state, query, body):
    items = [t for t in LOAD_BALANCER_TYPES if "name" not in query or t["name"] == query["name"][-1]]
    return 200, {"load_balancer_types": copy.deepcopy(items), "meta": _single_page(len(items))}


def _single_page(total):
    return {"pagination": {"page": 1, "per_page": max(total, 25), "previous_page": None, "next_page": None,
                           "last_page": 1, "total_entries": total}}


# ---------------------------------------------------------------- actions

@route("GET", r"/actions")
def get_actions(state, query, body):
    """Batched: every action named by an `id` (unknown ids are left out). The spec's answer has no
    `meta` and no paging, so all requested actions come back at once."""
    if "id" not in query:
        raise invalid_input("id", "at least one id is required")
    out = []
    for raw in query["id"]:
        try:
            act = state.actions.get(int(raw))
        except ValueError:
            raise invalid_input("id", f"invalid id {raw!r}") from None
        if act is not None:
            out.append(state.action_view(act))
    return 200, {"actions": out}


@route("GET", r"/actions/(\d+)")
def get_action(state, ident, query, body):
    act = state.actions.get(int(ident))
    if act is None:
        raise not_found("action", ident)
    return 200, {"action": state.action_view(act)}


@route("GET", r"/(servers|volumes|images|networks|load_balancers|firewalls)/(\d+)/actions/(\d+)")
def get_resource_action(state, collection, ident, action_id, query, body):
    state.get(collection, ident, collection[:-1])
    return get_action(state, action_id, query=query, body=body)


# ---------------------------------------------------------------- servers

def server_view(state, server):
    view = {k: v for k, v in server.items() if not k.startswith("_")}
    view = copy.deepcopy(view)
    if server["_pending"] and not state.action_done(server["_pending"]):
        view["status"] = server["_pending_status"]
    view["image"] = copy.deepcopy(state.items["images"].get(server["_image_id"])) if server["_image_id"] else None
    if view["image"] is not None:
        view["image"] = image_view(state, view["image"])
    pg = state.items["placement_groups"].get(server["_placement_group"]) if server["_placement_group"] else None
    view["placement_group"] = copy.deepcopy(pg)
    view["volumes"] = sorted(v["id"] for v in state.items["volumes"].values() if v["server"] == server["id"])
    view["load_balancers"] = sorted(lb["id"] for lb in state.items["load_balancers"].values()
                                    if any(t.get("server", {}).get("id") == server["id"] for t in lb["targets"]))
    view["public_net"]["firewalls"] = [
        {"id": fw["id"], "status": "applied"} for fw in state.items["firewalls"].values()
        if any(a.get("server", {}).get("id") == server["id"] for a in fw["applied_to"])]
    return view


def _settle(state, server):
    """Applies the status a finished pending action leads to."""
    if server["_pending"] and state.action_done(server["_pending"]):
        server["status"] = server["_final_status"]
        server["_pending"] = None


def _status_filter(item, wanted):
    return item["status"] in wanted


@route("GET", r"/servers")
def list_servers(state, query, body):
    for server in state.items["servers"].values():
        _settle(state, server)
    items, meta = state.list("servers", query, {"status": _status_filter}, lambda s: server_view(state, s))
    return 200, {"servers": items, "meta": meta}


@route("GET", r"/servers/(\d+)")
def get_server(state, ident, query, body):
    server = state.get("servers", ident, "server")
    _settle(state, server)
    return 200, {"server": server_view(state, server)}


def _allocate_ipv4(state):
    used = {s["public_net"]["ipv4"]["ip"] for s in state.items["servers"].values() if s["public_net"]["ipv4"]}
    used |= {lb["public_net"]["ipv4"]["ip"] for lb in state.items["load_balancers"].values()}
    for address in state.ipv4_pool:
        if address not in used:
            return address
    raise APIError(422, "resource_unavailable", "no free public IPv4 address left in the emulator's pool")


def _allocate_private(state, network, taken_by=None):
    net = ipaddress.IPv4Network(network["ip_range"], strict=False)
    used = {p["ip"] for s in state.items["servers"].values() for p in s["private_net"] if p["network"] == network["id"]}
    hosts = net.hosts()
    next(hosts, None)  # the first host is the network's gateway
    for address in hosts:
        if str(address) not in used:
            return str(address)
    raise APIError(422, "resource_unavailable", f"network {network['id']} has no free address")


@route("POST", r"/servers")
def create_server(state, query, body):
    require(body, "name", "server_type", "image")
    state.unique_name("servers", body["name"])
    stype = next((t for t in SERVER_TYPES if str(t[0]) == str(body["server_type"]) or t[1] == body["server_type"]),
                 None)
    if stype is None:
        raise invalid_input("server_type", f"server type {body['server_type']!r} not found")
    arch = stype[2]
    image = state.by_id_or_name("images", body["image"], "image",
                                lambda i: i["architecture"] == arch and i["status"] != "unavailable")
    location = location_of(state, body.get("location") or body.get("datacenter", "fsn1").split("-")[0])
    ssh_keys = [state.by_id_or_name("ssh_keys", k, "ssh_keys")["id"] for k in body.get("ssh_keys", []) or []]
    pg = state.get("placement_groups", body["placement_group"], "placement_group") if body.get("placement_group") else None
    networks = [state.get("networks", n, "network") for n in body.get("networks", []) or []]
    firewalls = [state.get("firewalls", f["firewall"], "firewall") for f in body.get("firewalls", []) or []]
    volumes = [state.get("volumes", v, "volume") for v in body.get("volumes", []) or []]
    public = body.get("public_net") or {}
    now = state.clock()
    ident = state.new_id()
    ipv4 = {"id": state.new_id(), "ip": _allocate_ipv4(state), "blocked": False,
            "dns_ptr": f"static.{ident}.clients.your-server.de"} if public.get("enable_ipv4", True) else None
    ipv6 = {"id": state.new_id(), "ip": f"2001:db8:{ident % 65536:x}::/64", "blocked": False,
            "dns_ptr": []} if public.get("enable_ipv6", True) else None
    server = {
        "id": ident, "name": body["name"], "status": "initializing", "created": iso(now),
        "public_net": {"ipv4": ipv4, "ipv6": ipv6, "floating_ips": [], "firewalls": []},
        "private_net": [], "server_type": server_type_object(stype),
        "datacenter": next(datacenter_object(l) for l in LOCATIONS if l["id"] == location["id"]),
        "location": location, "iso": None, "rescue_enabled": False, "locked": False, "backup_window": None,
        "outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21990232555520,
        "protection": {"delete": False, "rebuild": False}, "labels": labels_of(body),
        "primary_disk_size": stype[5], "volumes": [], "load_balancers": [], "placement_group": None, "image": None,
        "_image_id": image["id"], "_placement_group": pg["id"] if pg else None, "_ssh_keys": ssh_keys,
        "_user_data": body.get("user_data"), "_pending": None, "_pending_status": "initializing",
        "_final_status": "running" if body.get("start_after_create", True) else "off",
    }
    state.items["servers"][ident] = server
    for network in networks:
        server["private_net"].append({"network": network["id"], "ip": _allocate_private(state, network),
                                      "alias_ips": [], "mac_address": f"86:00:00:{ident % 256:02x}:{network['id'] % 256:02x}:01"})
    if pg:
        pg["servers"].append(ident)
    for fw in firewalls:
        fw["applied_to"].append({"type": "server", "server": {"id": ident}})
    for volume in volumes:
        volume["server"] = ident
    act = state.action("create_server", [("server", ident)])
    server["_pending"] = act["id"]
    next_actions = []
    if body.get("start_after_create", True):
        next_actions.append(state.action_view(state.action("start_server", [("server", ident)])))
    return 201, {"server": server_view(state, server), "action": state.action_view(act),
                 "next_actions": next_actions, "root_password": None if ssh_keys else root_password()}


@route("PUT", r"/servers/(\d+)")
def update_server(state, ident, query, body):
    server = state.get("servers", ident, "server")
    if "name" in (body or {}):
        if body["name"] != server["name"]:
            state.unique_name("servers", body["name"])
        server["name"] = body["name"]
    if "labels" in (body or {}):
        server["labels"] = labels_of(body)
    return 200, {"server": server_view(state, server)}


@route("DELETE", r"/servers/(\d+)")
def delete_server(state, ident, query, body):
    server = state.get("servers", ident, "server")
    if server["protection"]["delete"]:
        raise APIError(403, "protected", "server is protected against deletion")
    act = state.action("delete_server", [("server", server["id"])])
    del state.items["servers"][server["id"]]
    for volume in state.items["volumes"].values():
        if volume["server"] == server["id"]:
            volume["server"] = None
    for pg in state.items["placement_groups"].values():
        if server["id"] in pg["servers"]:
            pg["servers"].remove(server["id"])
    for fw in state.items["firewalls"].values():
        fw["applied_to"] = [a for a in fw["applied_to"] if a.get("server", {}).get("id") != server["id"]]
    for lb in state.items["load_balancers"].values():
        lb["targets"] = [t for t in lb["targets"] if t.get("server", {}).get("id") != server["id"]]
    return 200, {"action": state.action_view(act)}


POWER = {"poweron": ("start_server", "starting", "running"), "poweroff": ("stop_server", "stopping", "off"),
         "shutdown": ("shutdown_server", "stopping", "off"), "reboot": ("reboot_server", "starting", "running"),
         "reset": ("reset_server", "starting", "running")}


@route("POST", r"/servers/(\d+)/actions/(poweron|poweroff|shutdown|reboot|reset)")
def power_server(state, ident, verb, query, body):
    server = state.get("servers", ident, "server")
    _settle(state, server)
    command, during, after = POWER[verb]
    act = state.action(command, [("server", server["id"])])
    server["_pending"], server["_pending_status"], server["_final_status"] = act["id"], during, after
    return 201, {"action": state.action_view(act)}


@route("POST", r"/servers/(\d+)/actions/create_image")
def create_image(state, ident, query, body):
    server = state.get("servers", ident, "server")
    body = body or {}
    kind = body.get("type", "snapshot")
    if kind not in ("snapshot", "backup"):
        raise invalid_input("type", "must be snapshot or backup")
    now = state.clock()
    image_id = state.new_id()
    act = state.action("create_image", [("server", server["id"]), ("image", image_id)])
    base = state.items["images"].get(server["_image_id"]) or {}
    state.items["images"][image_id] = {
        "id": image_id, "type": kind, "status": "creating", "name": None,
        "description": body.get("description") or f"{server['name']}-{iso(now)}", "image_size": 0.5,
        "disk_size": server["primary_disk_size"], "created": iso(now),
        "created_from": {"id": server["id"], "name": server["name"]},
        "bound_to": server["id"] if kind == "backup" else None, "os_flavor": base.get("os_flavor", "unknown"),
        "os_version": base.get("os_version"), "rapid_deploy": False, "protection": {"delete": False},
        "deprecated": None, "deleted": None, "labels": labels_of(body), "architecture": server["server_type"]["architecture"],
        "_pending": act["id"]}
    return 201, {"image": image_view(state, state.items["images"][image_id]), "action": state.action_view(act)}


@route("POST", r"/servers/(\d+)/actions/(attach_to_network|detach_from_network)")
def server_network(state, ident, verb, query, body):
    server = state.get("servers", ident, "server")
    require(body, "network")
    network = state.get("networks", body["network"], "network")
    attached = any(p["network"] == network["id"] for p in server["private_net"])
    if verb == "attach_to_network":
        if attached:
            raise APIError(422, "server_already_attached", "server is already attached to this network")
        server["private_net"].append({"network": network["id"], "ip": body.get("ip") or _allocate_private(state, network),
                                      "alias_ips": body.get("alias_ips", []),
                                      "mac_address": f"86:00:00:{server['id'] % 256:02x}:{network['id'] % 256:02x}:01"})
    else:
        if not attached:
            raise APIError(422, "server_not_attached", "server is not attached to this network")
        server["private_net"] = [p for p in server["private_net"] if p["network"] != network["id"]]
    act = state.action(verb, [("server", server["id"]), ("network", network["id"])])
    return 201, {"action": state.action_view(act)}


# ---------------------------------------------------------------- images

def image_view(state, image):
    view = {k: v for k, v in image.items() if not k.startswith("_")}
    if image.get("_pending"):
        view["status"] = "creating" if not state.action_done(image["_pending"]) else "available"
    return copy.deepcopy(view)


@route("GET", r"/images")
def list_images(state, query, body):
    filters = {
        "type": lambda i, w: i["type"] in w,
        "architecture": lambda i, w: i["architecture"] in w,
        "status": lambda i, w: image_view(state, i)["status"] in w,
        "bound_to": lambda i, w: str(i["bound_to"]) in w,
    }
    items, meta = state.list("images", query, filters, lambda i: image_view(state, i))
    return 200, {"images": items, "meta": meta}


@route("GET", r"/images/(\d+)")
def get_image(state, ident, query, body):
    return 200, {"image": image_view(state, state.get("images", ident, "image"))}


@route("PUT", r"/images/(\d+)")
def update_image(state, ident, query, body):
    image = state.get("images", ident, "image")
    if image["type"] == "system":
        raise APIError(403, "forbidden", "system images cannot be changed")
    if "description" in (body or {}):
        image["description"] = body["description"]
    if "labels" in (body or {}):
        image["labels"] = labels_of(body)
    return 200, {"image": image_view(state, image)}


@route("DELETE", r"/images/(\d+)")
def delete_image(state, ident, query, body):
    image = state.get("images", ident, "image")
    if image["type"] == "system":
        raise APIError(403, "forbidden", "system images cannot be deleted")
    del state.items["images"][image["id"]]
    return 204, None


# ---------------------------------------------------------------- ssh keys

@route("GET", r"/ssh_keys")
def list_ssh_keys(state, query, body):
    filters = {"fingerprint": lambda k, w: k["fingerprint"] in w}
    items, meta = state.list("ssh_keys", query, filters, copy.deepcopy)
    return 200, {"ssh_keys": items, "meta": meta}


@route("GET", r"/ssh_keys/(\d+)")
def get_ssh_key(state, ident, query, body):
    return 200, {"ssh_key": copy.deepcopy(state.get("ssh_keys", ident, "ssh_key"))}


@route("POST", r"/ssh_keys")
def create_ssh_key(state, query, body):
    require(body, "name", "public_key")
    state.unique_name("ssh_keys", body["name"])
    fingerprint = _fingerprint(body["public_key"])
    if any(k["fingerprint"] == fingerprint for k in state.items["ssh_keys"].values()):
        raise APIError(409, "uniqueness_error", "SSH key with the same fingerprint already exists",
                       {"fields": [{"name": "public_key"}]})
    ident = state.new_id()
    key = {"id": ident, "name": body["name"], "fingerprint": fingerprint, "public_key": body["public_key"].strip(),
           "labels": labels_of(body), "created": iso(state.clock())}
    state.items["ssh_keys"][ident] = key
    return 201, {"ssh_key": copy.deepcopy(key)}


@route("PUT", r"/ssh_keys/(\d+)")
def update_ssh_key(state, ident, query, body):
    key = state.get("ssh_keys", ident, "ssh_key")
    if "name" in (body or {}):
        key["name"] = body["name"]
    if "labels" in (body or {}):
        key["labels"] = labels_of(body)
    return 200, {"ssh_key": copy.deepcopy(key)}


@route("DELETE", r"/ssh_keys/(\d+)")
def delete_ssh_key(state, ident, query, body):
    key = state.get("ssh_keys", ident, "ssh_key")
    del state.items["ssh_keys"][key["id"]]
    return 204, None


# ---------------------------------------------------------------- placement groups

@route("GET", r"/placement_groups")
def list_placement_groups(state, query, body):
    items, meta = state.list("placement_groups", query, {"type": lambda p, w: p["type"] in w}, copy.deepcopy)
    return 200, {"placement_groups": items, "meta": meta}


@route("GET", r"/placement_groups/(\d+)")
def get_placement_group(state, ident, query, body):
    return 200, {"placement_group": copy.deepcopy(state.get("placement_groups", ident, "placement_group"))}


@route("POST", r"/placement_groups")
def create_placement_group(state, query, body):
    require(body, "name", "type")
    if body["type"] != "spread":
        raise invalid_input("type", "must be spread")
    state.unique_name("placement_groups", body["name"])
    ident = state.new_id()
    pg = {"id": ident, "name": body["name"], "type": "spread", "servers": [], "labels": labels_of(body),
          "created": iso(state.clock())}
    state.items["placement_groups"][ident] = pg
    return 201, {"placement_group": copy.deepcopy(pg), "action": None}


@route("DELETE", r"/placement_groups/(\d+)")
def delete_placement_group(state, ident, query, body):
    pg = state.get("placement_groups", ident, "placement_group")
    if pg["servers"]:
        raise APIError(409, "resource_in_use", f"placement group {pg['id']} still has servers {pg['servers']}")
    del state.items["placement_groups"][pg["id"]]
    return 204, None


# ---------------------------------------------------------------- networks

@route("GET", r"/networks")
def list_networks(state, query, body):
    items, meta = state.list("networks", query, None, lambda n: network_view(state, n))
    return 200, {"networks": items, "meta": meta}


def network_view(state, network):
    view = copy.deepcopy(network)
    view["servers"] = sorted(s["id"] for s in state.items["servers"].values()
                             if any(p["network"] == network["id"] for p in s["private_net"]))
    view["load_balancers"] = sorted(lb["id"] for lb in state.items["load_balancers"].values()
                                    if any(p["network"] == network["id"] for p in lb["private_net"]))
    return view


@route("GET", r"/networks/(\d+)")
def get_network(state, ident, query, body):
    return 200, {"network": network_view(state, state.get("networks", ident, "network"))}


@route("POST", r"/networks")
def create_network(state, query, body):
    require(body, "name", "ip_range")
    state.unique_name("networks", body["name"])
    try:
        net = ipaddress.IPv4Network(body["ip_range"], strict=True)
    except ValueError:
        raise invalid_input("ip_range", "must be an IPv4 network in CIDR notation") from None
    subnets = []
    for sub in body.get("subnets", []) or []:
        require(sub, "type", "network_zone")
        rng = ipaddress.IPv4Network(sub.get("ip_range") or str(net), strict=False)
        subnets.append({"type": sub["type"], "ip_range": str(rng), "network_zone": sub["network_zone"],
                        "gateway": str(next(net.hosts())), "vswitch_id": sub.get("vswitch_id")})
    ident = state.new_id()
    network = {"id": ident, "name": body["name"], "ip_range": str(net), "subnets": subnets,
               "routes": body.get("routes", []) or [], "servers": [], "load_balancers": [],
               "protection": {"delete": False}, "labels": labels_of(body), "created": iso(state.clock()),
               "expose_routes_to_vswitch": bool(body.get("expose_routes_to_vswitch", False))}
    state.items["networks"][ident] = network
    return 201, {"network": network_view(state, network)}


@route("DELETE", r"/networks/(\d+)")
def delete_network(state, ident, query, body):
    network = state.get("networks", ident, "network")
    view = network_view(state, network)
    if view["servers"] or view["load_balancers"]:
        raise APIError(409, "resource_in_use",
                       f"network {network['id']} is still used by servers {view['servers']} and load balancers "
                       f"{view['load_balancers']}")
    del state.items["networks"][network["id"]]
    return 204, None


# ---------------------------------------------------------------- firewalls

@route("GET", r"/firewalls")
def list_firewalls(state, query, body):
    items, meta = state.list("firewalls", query, None, copy.deepcopy)
    return 200, {"firewalls": items, "meta": meta}


@route("GET", r"/firewalls/(\d+)")
def get_firewall(state, ident, query, body):
    return 200, {"firewall": copy.deepcopy(state.get("firewalls", ident, "firewall"))}


@route("POST", r"/firewalls")
def create_firewall(state, query, body):
    require(body, "name")
    state.unique_name("firewalls", body["name"])
    rules = []
    for rule in body.get("rules", []) or []:
        require(rule, "direction", "protocol")
        rules.append({"direction": rule["direction"], "protocol": rule["protocol"], "port": rule.get("port"),
                      "source_ips": rule.get("source_ips", []), "destination_ips": rule.get("destination_ips", []),
                      "description": rule.get("description")})
    ident = state.new_id()
    applied = []
    actions = []
    for target in body.get("apply_to", []) or []:
        if target.get("type") == "server":
            server = state.get("servers", target["server"]["id"], "server")
            applied.append({"type": "server", "server": {"id": server["id"]}})
            actions.append(state.action("apply_firewall", [("firewall", ident), ("server", server["id"])]))
        elif target.get("type") == "label_selector":
            applied.append({"type": "label_selector", "label_selector": target["label_selector"], "applied_to_resources": []})
    firewall = {"id": ident, "name": body["name"], "labels": labels_of(body), "created": iso(state.clock()),
                "rules": rules, "applied_to": applied}
    state.items["firewalls"][ident] = firewall
    return 201, {"firewall": copy.deepcopy(firewall), "actions": [state.action_view(a) for a in actions]}


@route("DELETE", r"/firewalls/(\d+)")
def delete_firewall(state, ident, query, body):
    firewall = state.get("firewalls", ident, "firewall")
    servers = [a["server"]["id"] for a in firewall["applied_to"] if a["type"] == "server"]
    if servers:
        raise APIError(409, "resource_in_use", f"firewall {firewall['id']} is still applied to servers {servers}")
    del state.items["firewalls"][firewall["id"]]
    return 204, None


# ---------------------------------------------------------------- load balancers

@route("GET", r"/load_balancers")
def list_load_balancers(state, query, body):
    items, meta = state.list("load_balancers", query, None, copy.deepcopy)
    return 200, {"load_balancers": items, "meta": meta}


@route("GET", r"/load_balancers/(\d+)")
def get_load_balancer(state, ident, query, body):
    return 200, {"load_balancer": copy.deepcopy(state.get("load_balancers", ident, "load_balancer"))}


@route("POST", r"/load_balancers")
def create_load_balancer(state, query, body):
    require(body, "name", "load_balancer_type")
    state.unique_name("load_balancers", body["name"])
    lbt = next((t for t in LOAD_BALANCER_TYPES
                if str(t["id"]) == str(body["load_balancer_type"]) or t["name"] == body["load_balancer_type"]), None)
    if lbt is None:
        raise invalid_input("load_balancer_type", "load balancer type not found")
    location = location_of(state, body.get("location") or "fsn1")
    ident = state.new_id()
    targets = []
    for target in body.get("targets", []) or []:
        if target.get("type") == "server":
            server = state.get("servers", target["server"]["id"], "server")
            targets.append({"type": "server", "server": {"id": server["id"]}, "use_private_ip": target.get("use_private_ip", False)})
        elif target.get("type") == "label_selector":
            targets.append({"type": "label_selector", "label_selector": target["label_selector"], "targets": []})
    private = []
    if body.get("network"):
        network = state.get("networks", body["network"], "network")
        private.append({"network": network["id"], "ip": _allocate_private(state, network)})
    lb = {"id": ident, "name": body["name"], "labels": labels_of(body), "created": iso(state.clock()),
          "load_balancer_type": copy.deepcopy(lbt), "location": location,
          "algorithm": body.get("algorithm") or {"type": "round_robin"},
          "public_net": {"enabled": body.get("public_interface", True),
                         "ipv4": {"ip": _allocate_ipv4(state), "dns_ptr": f"static.{ident}.clients.your-server.de"},
                         "ipv6": {"ip": f"2001:db8:1::{ident % 65536:x}", "dns_ptr": f"lb.{ident}.example"}},
          "private_net": private, "services": [], "targets": targets, "protection": {"delete": False},
          "included_traffic": 21990232555520, "ingoing_traffic": 0, "outgoing_traffic": 0}
    state.items["load_balancers"][ident] = lb
    act = state.action("create_load_balancer", [("load_balancer", ident)])
    return 201, {"load_balancer": copy.deepcopy(lb), "action": state.action_view(act)}


@route("DELETE", r"/load_balancers/(\d+)")
def delete_load_balancer(state, ident, query, body):
    lb = state.get("load_balancers", ident, "load_balancer")
    del state.items["load_balancers"][lb["id"]]
    return 204, None


# ---------------------------------------------------------------- volumes

@route("GET", r"/volumes")
def list_volumes(state, query, body):
    items, meta = state.list("volumes", query, {"status": lambda v, w: v["status"] in w}, copy.deepcopy)
    return 200, {"volumes": items, "meta": meta}


@route("GET", r"/volumes/(\d+)")
def get_volume(state, ident, query, body):
    return 200, {"volume": copy.deepcopy(state.get("volumes", ident, "volume"))}


@route("POST", r"/volumes")
def create_volume(state, query, body):
    require(body, "name", "size")
    state.unique_name("volumes", body["name"])
    if not isinstance(body["size"], int) or body["size"] < 10:
        raise invalid_input("size", "must be an integer of at least 10 (GB)")
    server = state.get("servers", body["server"], "server") if body.get("server") else None
    location = server["location"] if server else location_of(state, body.get("location") or "fsn1")
    ident = state.new_id()
    volume = {"id": ident, "name": body["name"], "size": body["size"], "server": server["id"] if server else None,
              "location": copy.deepcopy(location), "linux_device": f"/dev/disk/by-id/scsi-0HC_Volume_{ident}",
              "protection": {"delete": False}, "labels": labels_of(body), "status": "available",
              "created": iso(state.clock()), "format": body.get("format")}
    state.items["volumes"][ident] = volume
    act = state.action("create_volume", [("volume", ident)])
    nxt = [state.action_view(state.action("attach_volume", [("volume", ident), ("server", server["id"])]))] if server else []
    return 201, {"volume": copy.deepcopy(volume), "action": state.action_view(act), "next_actions": nxt}


@route("POST", r"/volumes/(\d+)/actions/attach")
def attach_volume(state, ident, query, body):
    volume = state.get("volumes", ident, "volume")
    require(body, "server")
    server = state.get("servers", body["server"], "server")
    if volume["server"] is not None:
        raise APIError(422, "volume_already_attached", f"volume {volume['id']} is attached to server {volume['server']}")
    volume["server"] = server["id"]
    act = state.action("attach_volume", [("volume", volume["id"]), ("server", server["id"])])
    return 201, {"action": state.action_view(act)}


@route("POST", r"/volumes/(\d+)/actions/detach")
def detach_volume(state, ident, query, body):
    volume = state.get("volumes", ident, "volume")
    resources = [("volume", volume["id"])] + ([("server", volume["server"])] if volume["server"] else [])
    volume["server"] = None
    act = state.action("detach_volume", resources)
    return 201, {"action": state.action_view(act)}


@route("DELETE", r"/volumes/(\d+)")
def delete_volume(state, ident, query, body):
    volume = state.get("volumes", ident, "volume")
    if volume["server"] is not None:
        raise APIError(423, "locked", f"volume {volume['id']} is attached to server {volume['server']}: detach it first")
    del state.items["volumes"][volume["id"]]
    return 204, None
