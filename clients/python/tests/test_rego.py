"""A real Rego engine (OPA, embedded through opa-golib-python-bindings)
evaluating a policy whose ec.oci.* builtins are answered by ocirpc."""
import unittest

import support
from ocirpc import Client
from ocirpc.rego import register_builtins

from opa_bindings import OpaEngine

POLICY = """
package policy

import rego.v1

manifests := ec.oci.image_manifests({ref | some ref in input.images})

deny contains msg if {
    some ref in input.images
    manifest := ec.oci.image_manifest(ref)
    some layer in manifest.layers
    not endswith(layer.mediaType, "+gzip")
    msg := sprintf("%s: layer %s is not gzip", [ref, layer.digest])
}

deny contains msg if {
    some ref in input.images
    manifest := ec.oci.image_manifest(ref)
    repo := split(ref, ":")
    config := ec.oci.parsed_blob(sprintf("%s:%s@%s", [repo[0], repo[1], manifest.config.digest]))
    not config.config.Labels["org.example.team"]
    msg := sprintf("%s: no org.example.team label", [ref])
}

deny contains msg if {
    some ref in input.images
    not manifests[ref]
    msg := sprintf("%s: cannot be fetched", [ref])
}
"""


def setUpModule():
    support.start()


def tearDownModule():
    support.stop()


class RegoTests(unittest.TestCase):
    def setUp(self):
        self.f = support.fixtures
        self.client = Client(binary=support.BINARY, timeout=30)
        self.engine = OpaEngine()
        register_builtins(self.engine, self.client)
        self.engine.add_policy("policy.rego", POLICY)

    def tearDown(self):
        self.engine.close()
        self.client.close()

    def deny(self, images):
        return set(self.engine.eval_document("policy.deny", input={"images": images}))

    def test_a_compliant_image_passes(self):
        self.assertEqual(self.deny([self.f["good"]]), set())

    def test_violations_are_reported_from_registry_content(self):
        bad, missing = self.f["bad"], self.f["missing"]
        denied = self.deny([self.f["good"], bad, missing])
        self.assertIn(f"{bad}: no org.example.team label", denied)
        self.assertIn(f"{missing}: cannot be fetched", denied)
        self.assertTrue(any(m.startswith(f"{bad}: layer sha256:") and m.endswith("is not gzip") for m in denied), denied)
        self.assertFalse(any(m.startswith(self.f["good"]) for m in denied), denied)


if __name__ == "__main__":
    unittest.main()
