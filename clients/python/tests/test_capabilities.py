"""clients/rego/capabilities.json: generated from the contract (never kept
by hand), naming the builtins the Rego bridge registers, and declaring
types that what the server returns conforms to."""
import json
import os
import runpy
import unittest

import support
from ocirpc import Client
from ocirpc.rego import BUILTINS

GENERATOR = runpy.run_path(os.path.join(support.ROOT, "scripts", "rego-capabilities"))
CAPABILITIES = os.path.join(support.ROOT, "clients", "rego", "capabilities.json")


def conforms(value, declared):
    """Whether `value` is of the OPA type `declared`."""
    kind = declared["type"]
    if kind == "any":
        return "of" not in declared or any(conforms(value, option) for option in declared["of"])
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind in ("array", "set"):
        item = declared.get("dynamic") or declared.get("of")
        return isinstance(value, list) and (item is None or all(conforms(v, item) for v in value))
    if kind == "object":
        if not isinstance(value, dict):
            return False
        static = {entry["key"]: entry["value"] for entry in declared.get("static", [])}
        dynamic = declared.get("dynamic")
        for key, member in value.items():
            if key in static:
                if not conforms(member, static[key]):
                    return False
            elif dynamic is None or not conforms(member, dynamic["value"]):
                return False
        return True
    return False


def setUpModule():
    support.start()


def tearDownModule():
    support.stop()


class CapabilitiesTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(CAPABILITIES) as source:
            cls.text = source.read()
        cls.builtins = {b["name"]: b for b in json.loads(cls.text)["builtins"]}

    def test_the_file_is_what_the_generator_writes_from_the_contract(self):
        with open(GENERATOR["CONTRACT"]) as source:
            self.assertEqual(self.text, GENERATOR["rendered"](json.load(source)),
                             "stale: run scripts/rego-capabilities")

    def test_merging_into_opas_capabilities_keeps_its_builtins_and_adds_ours(self):
        opa = {"builtins": [{"name": "count", "decl": {"type": "function"}},
                            {"name": "ec.oci.blob", "decl": {"type": "stale"}}], "features": ["rego_v1"]}
        merged = GENERATOR["merged"](opa, json.loads(self.text))
        names = [b["name"] for b in merged["builtins"]]
        self.assertIn("count", names)
        self.assertEqual(names.count("ec.oci.blob"), 1)
        self.assertEqual(len(names), 1 + len(self.builtins))
        self.assertEqual(merged["features"], ["rego_v1"])
        self.assertEqual(next(b for b in merged["builtins"] if b["name"] == "ec.oci.blob"),
                         self.builtins["ec.oci.blob"])

    def test_it_declares_the_builtins_the_bridge_registers_with_their_arity(self):
        self.assertEqual(set(self.builtins), set(BUILTINS))
        for name, (arity, _) in BUILTINS.items():
            self.assertEqual(len(self.builtins[name]["decl"]["args"]), arity, name)
            self.assertTrue(self.builtins[name]["nondeterministic"])

    def test_what_the_server_returns_conforms_to_the_declared_types(self):
        f = support.fixtures
        repository = f["good"].rsplit(":", 1)[0]
        with Client(binary=support.BINARY, timeout=30) as client:
            manifest = client.image_manifest(f["good"])
            layer = f"{repository}@{manifest['layers'][0]['digest']}"
            calls = {
                "ec.oci.blob": [f["jsonBlob"]],
                "ec.oci.parsed_blob": [f["jsonBlob"]],
                "ec.oci.blob_files": [layer, ["etc/policy/rules.yaml"]],
                "ec.oci.descriptor": [f["good"]],
                "ec.oci.image_manifest": [f["good"]],
                "ec.oci.image_manifests": [[f["good"], f["bad"]]],
                "ec.oci.image_files": [f"{repository}@{f['goodDigest']}", ["etc/policy"]],
                "ec.oci.image_tag_refs": [f["good"]],
                "ec.oci.image_referrers": [f["good"]],
            }
            for name, args in calls.items():
                declared = self.builtins[name]["decl"]
                with self.subTest(builtin=name):
                    for arg, arg_type in zip(args, declared["args"]):
                        self.assertTrue(conforms(arg, arg_type), f"argument {arg!r}")
                    result = client.call(name, args)
                    self.assertTrue(conforms(result, declared["result"]), f"{name} returned {result!r}")
        # A conforming checker refuses what is not of the type.
        self.assertFalse(conforms({"schemaVersion": "2"}, self.builtins["ec.oci.image_manifest"]["decl"]["result"]))


if __name__ == "__main__":
    unittest.main()
