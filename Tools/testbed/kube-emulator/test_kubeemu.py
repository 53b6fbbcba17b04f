"""Unit tests of the emulator's pure parts (selectors, patches, store rules). Standard library only:
    python3 -m unittest discover -s Tools/testbed/kube-emulator -p 'test_*.py'
"""

import unittest

from kubeemu.errors import ApiError
from kubeemu.patches import json_patch, merge_patch, strategic_merge
from kubeemu.registry import Registry
from kubeemu.selectors import labels_match, parse_field_selector, parse_label_selector
from kubeemu.store import Store


def obj(**labels):
    return {"metadata": {"labels": labels}}


class LabelSelectorTests(unittest.TestCase):
    def match(self, selector, **labels):
        return labels_match(parse_label_selector(selector), obj(**labels))

    def test_operators(self):
        self.assertTrue(self.match("a=1", a="1"))
        self.assertTrue(self.match("a==1", a="1"))
        self.assertFalse(self.match("a=1", a="2"))
        self.assertTrue(self.match("a!=1", a="2"))
        self.assertTrue(self.match("a!=1"))  # a missing label is "not equal"
        self.assertTrue(self.match("a in (1, 2)", a="2"))
        self.assertFalse(self.match("a in (1,2)"))
        self.assertTrue(self.match("a notin (1,2)", a="3"))
        self.assertTrue(self.match("a notin (1,2)"))
        self.assertTrue(self.match("a", a=""))
        self.assertFalse(self.match("!a", a="x"))
        self.assertTrue(self.match("!a"))
        self.assertTrue(self.match("n>3", n="4"))
        self.assertFalse(self.match("n<3", n="4"))

    def test_commas_inside_sets_and_conjunction(self):
        reqs = parse_label_selector("tier in (a,b),app.kubernetes.io/name=kargo,!x")
        self.assertEqual(len(reqs), 3)
        self.assertTrue(labels_match(reqs, obj(tier="b", **{"app.kubernetes.io/name": "kargo"})))

    def test_garbage_is_400(self):
        with self.assertRaises(ApiError) as e:
            parse_label_selector("a=(")
        self.assertEqual(e.exception.code, 400)


class FieldSelectorTests(unittest.TestCase):
    def test_parse(self):
        reqs = parse_field_selector("status.phase!=Running,status.phase!=Succeeded,metadata.name==x")
        self.assertEqual([(r.field, r.op, r.value) for r in reqs], [
            ("status.phase", "!=", "Running"), ("status.phase", "!=", "Succeeded"), ("metadata.name", "=", "x")])

    def test_supported_fields(self):
        reg = Registry()
        pods = reg.types[("", "pods")]
        self.assertEqual(pods.field_value({"status": {"phase": "Running"}}, "status.phase"), "Running")
        self.assertEqual(pods.field_value({}, "status.phase"), "")
        self.assertIsNone(pods.field_value({}, "spec.containers"))
        events = reg.types[("", "events")]
        self.assertEqual(events.field_value({"source": {"component": "k"}}, "source"), "k")


class PatchTests(unittest.TestCase):
    def test_merge_patch(self):
        self.assertEqual(merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None}, "l": [2]}),
                         {"a": {"c": 2}, "l": [2]})

    def test_json_patch(self):
        doc = {"metadata": {"labels": {"a/b": "1"}}, "list": [1, 2]}
        out = json_patch(doc, [{"op": "add", "path": "/list/-", "value": 3},
                               {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
                               {"op": "move", "from": "/list/0", "path": "/first"},
                               {"op": "test", "path": "/first", "value": 1}])
        self.assertEqual(out, {"metadata": {"labels": {"a/b": "2"}}, "list": [2, 3], "first": 1})
        self.assertEqual(doc["list"], [1, 2])  # input untouched
        with self.assertRaises(ApiError):
            json_patch(doc, [{"op": "remove", "path": "/nope"}])

    def test_strategic_merge_lists_by_key(self):
        current = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
                            "tolerations": [{"key": "x"}]},
                   "metadata": {"finalizers": ["f1"]}}
        patch = {"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}],
                          "tolerations": [{"key": "y"}],
                          "$setElementOrder/containers": [{"name": "b"}]},
                 "metadata": {"finalizers": ["f2"]}}
        out = strategic_merge(current, patch)
        self.assertEqual(out["spec"]["containers"], [{"name": "b", "image": "2"}])
        self.assertEqual(out["spec"]["tolerations"], [{"key": "y"}])  # no merge key: replaced
        self.assertEqual(out["metadata"]["finalizers"], ["f1", "f2"])
        self.assertNotIn("$setElementOrder/containers", out["spec"])

    def test_strategic_replace_and_ports(self):
        self.assertEqual(strategic_merge({"a": {"x": 1, "y": 2}}, {"a": {"$patch": "replace", "z": 3}}),
                         {"a": {"z": 3}})
        svc = strategic_merge({"ports": [{"port": 80, "name": "http"}]}, {"ports": [{"port": 80, "targetPort": 8080}]})
        self.assertEqual(svc["ports"], [{"port": 80, "name": "http", "targetPort": 8080}])


class StoreTests(unittest.TestCase):
    def setUp(self):
        self.reg = Registry()
        self.store = Store(self.reg)
        self.cm = self.reg.types[("", "configmaps")]

    def test_create_update_conflict(self):
        made = self.store.create(self.cm, "default", {"metadata": {"name": "x"}, "data": {"a": "1"}})
        self.assertEqual(made["metadata"]["generation"], 1)
        rv = made["metadata"]["resourceVersion"]
        stale = dict(made)
        self.store.update(self.cm, "default", "x", {**made, "data": {"a": "2"}})
        with self.assertRaises(ApiError) as e:
            self.store.update(self.cm, "default", "x", {**stale, "data": {"a": "3"}})
        self.assertEqual((e.exception.code, e.exception.reason), (409, "Conflict"))
        self.assertNotEqual(self.store.get(self.cm, "default", "x")["metadata"]["resourceVersion"], rv)

    def test_secret_string_data_is_folded_into_data(self):
        secrets = self.reg.types[("", "secrets")]
        made = self.store.create(secrets, "default", {"metadata": {"name": "s"}, "data": {"a": "MQ=="},
                                                      "stringData": {"b": "two"}})
        self.assertEqual(made["data"], {"a": "MQ==", "b": "dHdv"})
        self.assertNotIn("stringData", made)
        updated = self.store.update(secrets, "default", "s", {**made, "stringData": {"a": "one"}})
        self.assertEqual(updated["data"], {"a": "b25l", "b": "dHdv"})
        self.assertNotIn("stringData", updated)

    def test_missing_namespace_is_404(self):
        with self.assertRaises(ApiError) as e:
            self.store.create(self.cm, "nowhere", {"metadata": {"name": "x"}})
        self.assertEqual(e.exception.code, 404)

    def test_watch_resume_and_selector_transitions(self):
        made = self.store.create(self.cm, "default", {"metadata": {"name": "x", "labels": {"a": "1"}}})
        rv = made["metadata"]["resourceVersion"]
        w, first = self.store.watch(self.cm, "v1", "default", parse_label_selector("a=1"), [], rv, False)
        self.assertEqual(first, [])
        current = self.store.get(self.cm, "default", "x")
        current["metadata"]["labels"] = {"a": "2"}
        self.store.update(self.cm, "default", "x", current)
        self.assertEqual(w.events.get_nowait()["type"], "DELETED")  # left the selector
        self.store.unwatch(w)


if __name__ == "__main__":
    unittest.main()
