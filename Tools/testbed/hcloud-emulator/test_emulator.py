#!/usr/bin/env python3
"""Tests of the Hetzner Cloud API emulator: behaviour, every response against the official spec,
and the official `hcloud` CLI (hcloud-cli 1.30.3) against it.

    python3 -B test_emulator.py [-v]        (needs openapi-schema-validator and the hcloud CLI)

Each test class starts an emulator of its own on a free port (stopped at the end). The spec is
KH_HCLOUD_SPEC or ../shared/specs/hcloud-openapi.json beside the repository. A missing `hcloud`
binary is a failure, not a skip.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hcloudemu import selectors  # noqa: E402
from hcloudemu.spec import SpecChecker  # noqa: E402
from validate import check  # noqa: E402

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEYyfkDzTnqSAOWVjzpUG2qhjuXIWdWicFvVmRKGSavL kh-test"
CHECKER = SpecChecker()


class Emulator:
    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="kh-hcloud-test-")
        self.token = os.urandom(32).hex()
        token_file = Path(self.dir, "token")
        token_file.write_text(self.token)
        port_file = Path(self.dir, "port")
        with open(Path(self.dir, "log"), "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-B", str(HERE / "server.py"), "--port", "0", "--port-file", str(port_file),
                 "--token-file", str(token_file), *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 15
        while not port_file.exists() or not port_file.read_text():
            if time.time() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"emulator did not start: {Path(self.dir, 'log').read_text()}")
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{port_file.read_text()}"
        self.endpoint = self.base + "/v1"
        self.token_file = str(token_file)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, method, path, body=None, token=True, base=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        if token:
            headers["Authorization"] = f"Bearer {self.token if token is True else token}"
        request = urllib.request.Request((base or self.endpoint) + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None), dict(response.headers)
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, (json.loads(raw) if raw else None), dict(error.headers)

    def control(self, method, path, body=None):
        return self.call(method, path, body, base=self.base + "/__emulator")[1]

    def ok(self, method, path, body=None, status=None):
        code, answer, _ = self.call(method, path, body)
        expected = status or {"POST": 201, "DELETE": (200, 204)}.get(method, 200)
        if code not in (expected if isinstance(expected, tuple) else (expected,)):
            raise AssertionError(f"{method} {path}: HTTP {code}: {answer}")
        return answer


class SpecValidated(unittest.TestCase):
    """Every response any test provoked must fit the spec (checked after each test)."""

    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(*cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.control("POST", "/reset")

    def tearDown(self):
        log = self.emu.control("GET", "/requests")
        passed, problems = check(log["requests"], CHECKER, requests=False, responses=True)
        self.assertEqual(problems, [], "responses that do not fit the spec")
        self.assertEqual(passed, len(log["requests"]))

    def server(self, name, labels=None, **extra):
        body = {"name": name, "server_type": "cx22", "image": "ubuntu-24.04", "labels": labels or {}, **extra}
        return self.emu.ok("POST", "/servers", body)["server"]

    def wait_actions(self, ids, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            query = "&".join(f"id={i}" for i in ids)
            actions = self.emu.ok("GET", f"/actions?{query}")["actions"]
            if all(a["status"] != "running" for a in actions):
                return actions
            time.sleep(0.05)
        raise AssertionError(f"actions {ids} still running after {seconds}s")


class SelectorTests(unittest.TestCase):
    def test_grammar(self):
        labels = {"cluster": "khv3", "provisioner": "terraform", "hcloud/node-group": "pool-a"}
        cases = {
            "cluster=khv3": True, "cluster==khv3": True, "cluster!=khv3": False, "cluster": True, "!cluster": False,
            "!missing": True, "missing": False, "cluster in (a,khv3)": True, "cluster notin (a,khv3)": False,
            "cluster=khv3,provisioner=terraform": True, "cluster=khv3,provisioner=manual": False,
            "hcloud/node-group=pool-a": True, "hcloud/node-group in (pool-b, pool-c)": False,
            "missing!=x": True, "missing notin (x)": True, "": True,
        }
        for text, expected in cases.items():
            self.assertEqual(selectors.matches(selectors.parse(text), labels), expected, text)

    def test_invalid(self):
        for text in ["a=(", "a in (b", "=x", "a,,b", "a in ()", "a b"]:
            with self.assertRaises(ValueError, msg=text):
                selectors.parse(text)


class ServerTests(SpecValidated):
    def test_auth_is_required_and_errors_have_hetzner_shape(self):
        for token in (False, "wrong"):
            code, body, headers = self.emu.call("GET", "/servers", token=token)
            self.assertEqual(code, 401)
            self.assertEqual(body["error"]["code"], "unauthorized")
            self.assertIn("message", body["error"])
            self.assertIn("RateLimit-Limit", headers)
        code, body, _ = self.emu.call("GET", "/servers/424242")
        self.assertEqual((code, body["error"]["code"]), (404, "not_found"))
        code, body, _ = self.emu.call("POST", "/servers", {"name": "x"})
        self.assertEqual((code, body["error"]["code"]), (400, "invalid_input"))
        self.assertEqual(body["error"]["details"]["fields"][0]["name"], "server_type")

    def test_create_get_list_delete_with_actions(self):
        key = self.emu.ok("POST", "/ssh_keys", {"name": "k", "public_key": PUBLIC_KEY, "labels": {"a": "b"}})["ssh_key"]
        self.assertRegex(key["fingerprint"], r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")
        pg = self.emu.ok("POST", "/placement_groups", {"name": "pg", "type": "spread"})["placement_group"]
        net = self.emu.ok("POST", "/networks", {"name": "n", "ip_range": "10.0.0.0/16"})["network"]
        created = self.emu.ok("POST", "/servers", {
            "name": "khv3-a", "server_type": "cax11", "image": "ubuntu-24.04", "ssh_keys": [str(key["id"])],
            "placement_group": pg["id"], "networks": [net["id"]], "labels": {"cluster": "khv3"}})
        server = created["server"]
        self.assertEqual(created["root_password"], None)
        self.assertEqual(server["status"], "initializing")
        self.assertEqual(server["image"]["architecture"], "arm")
        self.assertEqual(server["public_net"]["ipv4"]["ip"], "127.0.1.1")
        self.assertEqual(server["private_net"][0]["ip"], "10.0.0.2")
        self.assertEqual(server["placement_group"]["id"], pg["id"])
        self.assertEqual(created["action"]["status"], "running")
        actions = self.wait_actions([created["action"]["id"], created["next_actions"][0]["id"]])
        self.assertEqual({a["status"] for a in actions}, {"success"})
        self.assertEqual(self.emu.ok("GET", f"/servers/{server['id']}")["server"]["status"], "running")
        second = self.server("khv3-b")
        self.assertEqual(second["public_net"]["ipv4"]["ip"], "127.0.1.2")
        power = self.emu.ok("POST", f"/servers/{second['id']}/actions/poweroff")["action"]
        self.wait_actions([power["id"]])
        self.assertEqual(self.emu.ok("GET", f"/servers/{second['id']}")["server"]["status"], "off")
        code, body, _ = self.emu.call("POST", "/servers", {"name": "khv3-a", "server_type": "cx22", "image": "debian-12"})
        self.assertEqual((code, body["error"]["code"]), (409, "uniqueness_error"))
        deleted = self.emu.ok("DELETE", f"/servers/{server['id']}")
        self.assertEqual(deleted["action"]["command"], "delete_server")
        self.assertEqual(self.emu.call("GET", f"/servers/{server['id']}")[0], 404)
        self.assertEqual(self.emu.ok("GET", f"/placement_groups/{pg['id']}")["placement_group"]["servers"], [])
        third = self.server("khv3-c")
        self.assertEqual(third["public_net"]["ipv4"]["ip"], "127.0.1.1", "a freed address is handed out again")

    def test_label_selectors_name_filter_and_pagination(self):
        for i in range(60):
            labels = {"cluster": "khv3" if i % 2 == 0 else "other"}
            if i % 3 == 0:
                labels["hcloud/node-group"] = "pool-a"
            self.emu.ok("POST", "/ssh_keys", {"name": f"key-{i:02d}", "labels": labels,
                                              "public_key": PUBLIC_KEY.replace("AAAAIEYy", f"AAAAIE{i:02d}")})
        page = self.emu.ok("GET", "/ssh_keys")
        self.assertEqual(len(page["ssh_keys"]), 25)
        self.assertEqual(page["meta"]["pagination"], {"page": 1, "per_page": 25, "previous_page": None, "next_page": 2,
                                                      "last_page": 3, "total_entries": 60})
        seen = []
        number = 1
        while number:
            page = self.emu.ok("GET", f"/ssh_keys?per_page=100&page={number}")
            self.assertLessEqual(len(page["ssh_keys"]), 50)
            seen += [k["name"] for k in page["ssh_keys"]]
            number = page["meta"]["pagination"]["next_page"]
        self.assertEqual(seen, [f"key-{i:02d}" for i in range(60)])
        def names(selector):
            from urllib.parse import quote
            return [k["name"] for k in self.emu.ok("GET", f"/ssh_keys?per_page=50&label_selector={quote(selector)}")["ssh_keys"]]
        self.assertEqual(len(names("cluster=khv3")), 30)
        self.assertEqual(len(names("cluster!=khv3")), 30)
        self.assertEqual(len(names("cluster=khv3,hcloud/node-group=pool-a")), 10)
        self.assertEqual(len(names("!hcloud/node-group")), 40)
        self.assertEqual(len(names("hcloud/node-group")), 20)
        self.assertEqual(len(names("cluster in (khv3,other)")), 50)  # first page of 60
        self.assertEqual(len(names("cluster notin (other)")), 30)
        self.assertEqual(self.emu.ok("GET", "/ssh_keys?name=key-07")["ssh_keys"][0]["name"], "key-07")
        code, body, _ = self.emu.call("GET", "/ssh_keys?label_selector=a%20in%20(b")
        self.assertEqual((code, body["error"]["code"]), (400, "invalid_input"))
        desc = self.emu.ok("GET", "/ssh_keys?sort=name:desc&per_page=2")["ssh_keys"]
        self.assertEqual([k["name"] for k in desc], ["key-59", "key-58"])

    def test_snapshots_with_labels_architecture_and_type_filter(self):
        x86 = self.server("builder-x86")
        arm = self.server("builder-arm", server_type="cax11")
        one = self.emu.ok("POST", f"/servers/{x86['id']}/actions/create_image",
                          {"type": "snapshot", "description": "k3s x86", "labels": {"microos-snapshot": "yes"}})
        self.assertEqual(one["image"]["status"], "creating")
        two = self.emu.ok("POST", f"/servers/{arm['id']}/actions/create_image",
                          {"description": "k3s arm", "labels": {"microos-snapshot": "yes"}})
        self.wait_actions([one["action"]["id"], two["action"]["id"]])
        snaps = self.emu.ok("GET", "/images?type=snapshot&label_selector=microos-snapshot%3Dyes")["images"]
        self.assertEqual([(s["description"], s["architecture"], s["status"]) for s in snaps],
                         [("k3s x86", "x86", "available"), ("k3s arm", "arm", "available")])
        arm_only = self.emu.ok("GET", "/images?type=snapshot&architecture=arm")["images"]
        self.assertEqual([s["description"] for s in arm_only], ["k3s arm"])
        systems = self.emu.ok("GET", "/images?type=system&per_page=50")["images"]
        self.assertTrue(systems and all(s["type"] == "system" for s in systems))
        self.emu.ok("DELETE", f"/images/{one['image']['id']}")
        self.assertEqual(len(self.emu.ok("GET", "/images?type=snapshot")["images"]), 1)

    def test_batched_actions_and_action_faults(self):
        self.emu.control("POST", "/config", {"action_delay": 0.3})
        servers = [self.server(f"s{i}") for i in range(3)]
        ids = [self.emu.ok("DELETE", f"/servers/{s['id']}")["action"]["id"] for s in servers]
        running = self.emu.ok("GET", "/actions?" + "&".join(f"id={i}" for i in ids))["actions"]
        self.assertEqual([(a["id"], a["status"], a["finished"]) for a in running], [(i, "running", None) for i in ids])
        done = self.wait_actions(ids)
        self.assertTrue(all(a["status"] == "success" and a["progress"] == 100 and a["finished"] for a in done))
        self.emu.control("POST", "/config", {"action_delay": 0})
        self.emu.control("POST", "/faults", {"kind": "action", "command": "delete_server", "count": 1,
                                             "code": "server_error", "message": "injected"})
        failing = self.server("f")
        act = self.emu.ok("DELETE", f"/servers/{failing['id']}")["action"]
        result = self.emu.ok("GET", f"/actions/{act['id']}")["action"]
        self.assertEqual((result["status"], result["error"]["code"]), ("error", "server_error"))
        self.assertEqual(self.emu.call("GET", "/actions")[0], 400)

    def test_response_faults_and_request_log(self):
        self.emu.control("POST", "/faults", {"method": "GET", "path": "/servers", "status": 503,
                                             "code": "unavailable", "count": 2})
        self.assertEqual(self.emu.call("GET", "/servers")[0], 503)
        self.assertEqual(self.emu.call("GET", "/servers")[0], 503)
        self.assertEqual(self.emu.call("GET", "/servers")[0], 200)
        log = self.emu.control("GET", "/requests")
        self.assertEqual(log["counts"], {"GET /servers": 3})
        self.assertEqual([e["status"] for e in log["requests"]], [503, 503, 200])
        self.assertEqual(log["requests"][0]["query"], {})

    def test_rate_limit_budget_headers_and_429(self):
        self.emu.control("POST", "/rate_limit", {"limit": 5, "remaining": 3, "refill_per_second": 0.5})
        remaining = []
        for _ in range(3):
            code, _, headers = self.emu.call("GET", "/servers")
            self.assertEqual(code, 200)
            remaining.append(int(headers["RateLimit-Remaining"]))
            self.assertEqual(headers["RateLimit-Limit"], "5")
            self.assertGreater(int(headers["RateLimit-Reset"]), time.time())
        self.assertEqual(remaining, [2, 1, 0])
        code, body, headers = self.emu.call("GET", "/servers")
        self.assertEqual((code, body["error"]["code"], headers["RateLimit-Remaining"]), (429, "rate_limit_exceeded", "0"))
        self.assertEqual(self.emu.control("GET", "/requests")["rate_limited"], 1)
        time.sleep(2.1)  # one request refills every 2 s
        self.assertEqual(self.emu.call("GET", "/servers")[0], 200)


class DependencyTests(SpecValidated):
    def test_volumes_firewalls_networks_placement_groups_and_load_balancers(self):
        net = self.emu.ok("POST", "/networks", {"name": "n", "ip_range": "10.1.0.0/16", "subnets": [
            {"type": "cloud", "ip_range": "10.1.0.0/24", "network_zone": "eu-central"}]})["network"]
        pg = self.emu.ok("POST", "/placement_groups", {"name": "pg", "type": "spread"})["placement_group"]
        server = self.server("khv3-n", networks=[net["id"]], placement_group=pg["id"])
        fw = self.emu.ok("POST", "/firewalls", {"name": "fw", "rules": [
            {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0"]}],
            "apply_to": [{"type": "server", "server": {"id": server["id"]}}]})["firewall"]
        volume = self.emu.ok("POST", "/volumes", {"name": "v", "size": 10, "server": server["id"]})["volume"]
        lb = self.emu.ok("POST", "/load_balancers", {"name": "lb", "load_balancer_type": "lb11", "location": "fsn1",
                                                     "network": net["id"],
                                                     "targets": [{"type": "server", "server": {"id": server["id"]}}]})
        self.assertEqual(lb["load_balancer"]["targets"][0]["server"]["id"], server["id"])
        view = self.emu.ok("GET", f"/servers/{server['id']}")["server"]
        self.assertEqual(view["volumes"], [volume["id"]])
        self.assertEqual(view["public_net"]["firewalls"][0]["id"], fw["id"])
        self.assertEqual(self.emu.call("DELETE", f"/volumes/{volume['id']}")[1]["error"]["code"], "locked")
        self.assertEqual(self.emu.call("DELETE", f"/firewalls/{fw['id']}")[0], 409)
        self.assertEqual(self.emu.call("DELETE", f"/placement_groups/{pg['id']}")[0], 409)
        self.assertEqual(self.emu.call("DELETE", f"/networks/{net['id']}")[0], 409)
        detach = self.emu.ok("POST", f"/volumes/{volume['id']}/actions/detach")["action"]
        self.assertEqual(detach["command"], "detach_volume")
        self.assertIsNone(self.emu.ok("GET", f"/volumes/{volume['id']}")["volume"]["server"])
        attach = self.emu.ok("POST", f"/volumes/{volume['id']}/actions/attach", {"server": server["id"]})["action"]
        self.wait_actions([detach["id"], attach["id"]])
        self.emu.ok("POST", f"/volumes/{volume['id']}/actions/detach")
        self.emu.ok("DELETE", f"/servers/{server['id']}")
        self.emu.ok("DELETE", f"/load_balancers/{lb['load_balancer']['id']}")
        for path in (f"/placement_groups/{pg['id']}", f"/firewalls/{fw['id']}", f"/networks/{net['id']}",
                     f"/volumes/{volume['id']}"):
            self.assertEqual(self.emu.call("DELETE", path)[0], 204, path)
        info = self.emu.control("GET", "/info")["counts"]
        self.assertEqual({k: v for k, v in info.items() if k != "images"},
                         {k: 0 for k in info if k != "images"})


class CLITests(SpecValidated):
    """The official hcloud CLI against the emulator (HCLOUD_ENDPOINT, HCLOUD_TOKEN, a config of its own)."""

    def hcloud(self, *args, check=True):
        binary = shutil.which("hcloud")
        self.assertIsNotNone(binary, "the hcloud CLI is missing: apt-get install hcloud-cli (make deps does)")
        env = {**os.environ, "HCLOUD_ENDPOINT": self.emu.endpoint, "HCLOUD_TOKEN": self.emu.token,
               "HCLOUD_CONFIG": str(Path(self.emu.dir, "cli.toml")), "NO_COLOR": "1"}
        result = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"hcloud {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def test_server_and_ssh_key_lifecycle_with_label_selectors_and_json(self):
        key_file = Path(self.emu.dir, "id.pub")
        key_file.write_text(PUBLIC_KEY + "\n")
        self.hcloud("ssh-key", "create", "--name", "khv3-key", "--public-key-from-file", str(key_file),
                    "--label", "cluster=khv3")
        keys = json.loads(self.hcloud("ssh-key", "list", "-o", "json").stdout)
        self.assertEqual([(k["name"], k["labels"]) for k in keys], [("khv3-key", {"cluster": "khv3"})])
        for name, cluster in (("khv3-a", "khv3"), ("khv3-b", "khv3"), ("other-c", "other")):
            out = self.hcloud("server", "create", "--name", name, "--type", "cx22", "--image", "ubuntu-24.04",
                              "--ssh-key", "khv3-key", "--label", f"cluster={cluster}").stdout
            self.assertIn("Server", out)
            self.assertIn("created", out)
        listed = json.loads(self.hcloud("server", "list", "-l", "cluster=khv3", "-o", "json").stdout)
        self.assertEqual(sorted(s["name"] for s in listed), ["khv3-a", "khv3-b"])
        self.assertTrue(all(s["status"] == "running" for s in listed))
        self.assertEqual(sorted(s["public_net"]["ipv4"]["ip"] for s in listed), ["127.0.1.1", "127.0.1.2"])
        others = json.loads(self.hcloud("server", "list", "-l", "cluster notin (khv3)", "-o", "json").stdout)
        self.assertEqual([s["name"] for s in others], ["other-c"])
        columns = self.hcloud("server", "list", "-o", "columns=id,name,status,ipv4").stdout
        self.assertRegex(columns, r"khv3-a\s+running\s+127\.0\.1\.1")
        ids = [line.split()[0] for line in self.hcloud("server", "list", "-o", "columns=id,name").stdout.splitlines()
               if "khv3-" in line]
        self.assertEqual(len(ids), 2)
        for ident in ids:
            self.assertIn("deleted", self.hcloud("server", "delete", ident).stdout)
        remaining = json.loads(self.hcloud("server", "list", "-o", "json").stdout)
        self.assertEqual([s["name"] for s in remaining], ["other-c"])
        self.hcloud("server", "create-image", "--type", "snapshot", "--description", "k3s x86", "--label",
                    "microos-snapshot=yes", "other-c")
        snaps = json.loads(self.hcloud("image", "list", "--type", "snapshot", "-o", "json").stdout)
        self.assertEqual([(s["description"], s["labels"]) for s in snaps], [("k3s x86", {"microos-snapshot": "yes"})])
        failed = self.hcloud("server", "describe", "nope", check=False)
        self.assertNotEqual(failed.returncode, 0)
        self.hcloud("ssh-key", "delete", "khv3-key")
        self.assertIn(json.loads(self.hcloud("ssh-key", "list", "-o", "json").stdout), (None, []))  # the CLI prints null

    def test_wrong_token_is_refused(self):
        env_token = self.emu.token
        try:
            self.emu.token = "0" * 64
            result = self.hcloud("server", "list", check=False)
        finally:
            self.emu.token = env_token
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("unauthorized", result.stderr + result.stdout)


if __name__ == "__main__":
    unittest.main()
