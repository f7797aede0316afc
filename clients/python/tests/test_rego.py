"""A real Rego engine (OPA, embedded through opa-golib-python-bindings)
evaluating a policy whose ec.oci.* builtins are answered by ocirpc."""
import contextlib
import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
import unittest

import support
from ocirpc import Client
from ocirpc import rego
from ocirpc.errors import IncompleteBatch, RPCError
from ocirpc.rego import register_builtins

from opa_bindings import OpaEngine, OpaError

POLICY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policy")

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


class BuiltinFailureTests(unittest.TestCase):
    def setUp(self):
        self.f = support.fixtures
        self.client = Client(binary=support.BINARY, timeout=30)
        self.engine = OpaEngine()
        self.engine.add_policy("p.rego", "package p\n\nmanifest := ec.oci.image_manifest(input.ref)\n")

    def tearDown(self):
        self.engine.close()
        self.client.close()

    def test_a_failing_builtin_is_logged_with_its_code_and_reason(self):
        register_builtins(self.engine, self.client)
        with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
            try:
                self.engine.eval_document("p.manifest", input={"ref": self.f["missing"]})
            except OpaError:
                pass  # undefined, or null: either way not an answer
        self.assertEqual(len(logged.output), 1)
        self.assertIn("ec.oci.image_manifest(" + self.f["missing"] + ")", logged.output[0])
        self.assertIn("code -32001", logged.output[0])
        self.assertIn("reason manifest_unknown", logged.output[0])

    def test_strict_mode_fails_the_evaluation(self):
        register_builtins(self.engine, self.client, strict=True)
        with self.assertLogs("ocirpc.rego", level="WARNING"):
            with self.assertRaises(OpaError):
                self.engine.eval_document("p.manifest", input={"ref": self.f["missing"]})

    def test_a_server_that_died_fails_the_evaluation_even_when_not_strict(self):
        # Undefined from a dead server would pass this deny rule for an
        # image that breaks it.
        self.engine.add_policy("d.rego", """package d

deny contains "v2" if {
    ec.oci.image_manifest(input.ref).annotations.v == "2"
}
""")
        register_builtins(self.engine, self.client)
        self.assertEqual(self.engine.eval_document("d.deny", input={"ref": self.f["bad"]}), ["v2"])
        self.client._process.kill()
        self.client._process.wait()
        with self.assertLogs("ocirpc.rego", level="WARNING"):
            with self.assertRaises(OpaError):
                self.engine.eval_document("d.deny", input={"ref": self.f["bad"]})

    def test_a_limit_of_the_servers_fails_the_evaluation_even_when_not_strict(self):
        # The original has no such limit: it answers, and this rule denies.
        policy = """package f

deny contains "minimum" if {
    ec.oci.image_files(input.ref, ["etc/policy"])["etc/policy/rules.yaml"].minimum == 3
}
"""
        ref = self.f["good"].rsplit(":", 1)[0] + "@" + self.f["goodDigest"]
        self.engine.add_policy("f.rego", policy)
        register_builtins(self.engine, self.client)
        self.assertEqual(self.engine.eval_document("f.deny", input={"ref": ref}), ["minimum"])
        with Client(binary=support.BINARY, args=["--max-decompressed-bytes", "1"], timeout=30) as limited:
            engine = OpaEngine()
            try:
                engine.add_policy("f.rego", policy)
                register_builtins(engine, limited)
                with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
                    with self.assertRaises(OpaError):
                        engine.eval_document("f.deny", input={"ref": ref})
                self.assertIn("reason decompression_limit", logged.output[0])
            finally:
                engine.close()

    def test_a_blob_nested_deeper_than_the_server_answers_fails_the_evaluation_even_when_not_strict(self):
        # Go's encoding/json reads 10,000 levels: the original answers this
        # config, and the rule denies an image without the label. Refused
        # as not JSON, it was undefined, and the image passed.
        registry = support.fixture_registry_in_use()
        config = ('{"config":{"Labels":{}},"deep":' + "[" * 600 + "]" * 600 + "}").encode()
        image = registry.push_image("clients/app", "deep-config", config=config)
        self.engine.add_policy("n.rego", """package n

deny contains "unlabelled" if {
    manifest := ec.oci.image_manifest(input.ref)
    config := ec.oci.parsed_blob(sprintf("%s@%s", [input.repo, manifest.config.digest]))
    not config.config.Labels["org.example.team"]
}
""")
        register_builtins(self.engine, self.client)
        repo = f"{self.f['host']}/clients/app"
        with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
            with self.assertRaises(OpaError):
                self.engine.eval_document("n.deny", input={"ref": f"{repo}@{image}", "repo": repo})
        self.assertIn("reason json_too_deep", logged.output[0])

    def test_a_call_past_the_runners_deadline_fails_the_evaluation_even_when_not_strict(self):
        # The original has no deadline of its own: it waits, and never
        # passes this rule.
        self.engine.add_policy("t.rego", """package t

deny contains "stalled" if {
    ec.oci.image_manifest(input.ref).annotations.v == "1"
}
""")
        with Client(binary=support.BINARY, timeout=0.5) as impatient:
            register_builtins(self.engine, impatient)
            with self.assertLogs("ocirpc.rego", level="WARNING"):
                with self.assertRaises(OpaError):
                    self.engine.eval_document("t.deny", input={"ref": support.BLACKHOLE})

    def ambiguous_index(self):
        """An index the original resolves to its first entry, the good image
        (`v: "1"`), and the server refuses: runtimes may run its second."""
        registry = support.fixture_registry_in_use()
        image = self.f["goodDigest"]
        entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image,
                 "size": len(registry.manifest_bytes("clients/app", image))}
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {**entry, "platform": {"os": "linux", "architecture": "amd64"}},
            {**entry, "platform": {"os": "linux", "architecture": "x86_64"}},
        ]}).encode()
        registry.push_manifest("clients/app", "ambiguous", index, media_type="application/vnd.oci.image.index.v1+json")
        return f"{self.f['host']}/clients/app:ambiguous"

    def test_content_the_server_refuses_and_the_original_reads_fails_the_evaluation_even_when_not_strict(self):
        index = self.ambiguous_index()
        binary = support.fixture_registry_in_use().push_blob("clients/app", b"\xff\xfe not UTF-8")
        self.engine.add_policy("c.rego", """package c

deny contains "v1" if {
    ec.oci.image_manifest(input.index).annotations.v == "1"
}

deny contains "blob" if {
    ec.oci.blob(input.blob)
}
""")
        register_builtins(self.engine, self.client)
        for field, ref, reason in (("index", index, "ambiguous_platform"),
                                   ("blob", f"{self.f['host']}/clients/app@{binary}", "binary_content")):
            with self.subTest(reason):
                with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
                    with self.assertRaises(OpaError):
                        self.engine.eval_document("c.deny", input={field: ref})
                self.assertIn(f"reason {reason}", logged.output[0])

    def test_layers_the_original_reads_and_the_server_refuses_fail_the_evaluation_even_when_not_strict(self):
        # The original reads each layer's bytes as they come and each file
        # by its name: it neither checks a layer against its config's
        # diff_ids (a node holding a layer of that digest runs that one
        # instead), nor resolves a lower layer's symbolic link above an
        # upper layer's file (runtimes write the file through the link, or
        # into a directory of that name). It answers, and this rule denies
        # both images.
        registry = support.fixture_registry_in_use()
        rules = {"etc/policy/rules.yaml": b"minimum: 3\n"}
        config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
        other_diff_id = registry.push_image("clients/app", "other-diff-id",
                                            layers=[support.fixture_registry.tar_gz(rules)], config=config)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            link = tarfile.TarInfo("etc/policy")
            link.type, link.linkname = tarfile.SYMTYPE, "elsewhere"
            tar.addfile(link)
        linked = registry.push_image("clients/app", "through-a-link",
                                     layers=[gzip.compress(raw.getvalue()), support.fixture_registry.tar_gz(rules)])
        self.engine.add_policy("l.rego", """package l

deny contains "minimum" if {
    ec.oci.image_files(input.ref, ["etc/policy"])["etc/policy/rules.yaml"].minimum == 3
}
""")
        register_builtins(self.engine, self.client)
        for digest, reason in ((other_diff_id, "digest_mismatch"), (linked, "corrupt_archive")):
            with self.subTest(reason):
                with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
                    with self.assertRaises(OpaError):
                        self.engine.eval_document("l.deny", input={"ref": f"{self.f['host']}/clients/app@{digest}"})
                self.assertIn(f"reason {reason}", logged.output[0])

    def test_a_manifest_go_reads_otherwise_than_a_lookup_fails_the_evaluation_even_when_not_strict(self):
        # Go's encoding/json takes "Layers" for "layers": the original reads
        # the layer (and a runtime pulling the image unpacks it), and this
        # rule denies the image. The server refuses the manifest as
        # ambiguous; undefined, the rule passed it.
        registry = support.fixture_registry_in_use()
        layer = support.fixture_registry.tar_gz({"etc/policy/rules.yaml": b"minimum: 3\n"})
        config = registry.push_blob("clients/app", b"{}")
        layer_digest = registry.push_blob("clients/app", layer)
        manifest = {"schemaVersion": 2, "mediaType": support.fixture_registry.OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": config},
                    "Layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(layer),
                                "digest": layer_digest}]}
        digest = registry.push_manifest("clients/app", "layers-in-other-letters", json.dumps(manifest).encode())
        self.engine.add_policy("m.rego", """package m

deny contains "minimum" if {
    ec.oci.image_files(input.ref, ["etc/policy"])["etc/policy/rules.yaml"].minimum == 3
}
""")
        register_builtins(self.engine, self.client)
        with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
            with self.assertRaises(OpaError):
                self.engine.eval_document("m.deny", input={"ref": f"{self.f['host']}/clients/app@{digest}"})
        self.assertIn("reason ambiguous_manifest", logged.output[0])

    def test_a_registry_the_user_blocked_fails_the_evaluation_even_when_not_strict(self):
        # Undefined, every deny rule over an image from a registry the user
        # blocked would pass it; the original, which reads no
        # registries.conf, answers, and the rule denies it.
        self.engine.add_policy("k.rego", """package k

deny contains "v2" if {
    ec.oci.image_manifest(input.ref).annotations.v == "2"
}
""")
        with tempfile.TemporaryDirectory() as directory:
            conf = os.path.join(directory, "registries.conf")
            with open(conf, "w") as file:
                file.write(f'[[registry]]\nlocation = "{self.f["host"]}"\nblocked = true\n')
            with Client(binary=support.BINARY, args=["--registries-conf", conf], timeout=30) as blocking:
                register_builtins(self.engine, blocking)
                with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
                    with self.assertRaises(OpaError):
                        self.engine.eval_document("k.deny", input={"ref": self.f["bad"]})
        self.assertIn("reason blocked", logged.output[0])

    def test_a_batch_member_the_original_reads_fails_the_evaluation_where_one_it_fails_is_left_out(self):
        self.engine.add_policy("b.rego", """package b

deny contains ref if {
    some ref, manifest in ec.oci.image_manifests({ref | some ref in input.refs})
    manifest.annotations.v == "1"
}
""")
        register_builtins(self.engine, self.client)
        self.assertEqual(self.engine.eval_document("b.deny", input={"refs": [self.f["good"], self.f["missing"]]}),
                         [self.f["good"]])
        with self.assertLogs("ocirpc.rego", level="WARNING") as logged:
            with self.assertRaises(OpaError):
                self.engine.eval_document("b.deny", input={"refs": [self.ambiguous_index(), self.f["missing"]]})
        self.assertIn("reason ambiguous_platform", logged.output[0])


class UndefinedInTheOriginalTests(unittest.TestCase):
    """Which errors a builtin answers undefined when not strict."""

    @staticmethod
    def error(code, reason):
        return RPCError.from_object({"code": code, "message": "m", "data": {"reason": reason}})

    def test_a_registrys_refusal_or_failure_and_a_bad_argument_are_undefined(self):
        for code, reason in ((-32001, "manifest_unknown"), (-32002, "unauthorized"), (-32002, "denied"), (-32004, "timeout"),
                             (-32004, "server_error"), (-32602, "invalid_reference"),
                             (-32006, "no_matching_platform"), (-32006, "not_json"),
                             (-32006, "invalid_manifest"), (-32001, "blob_unknown")):
            with self.subTest(code=code, reason=reason):
                self.assertTrue(rego.undefined_in_the_original(self.error(code, reason)))

    def test_the_servers_own_failure_a_cancellation_and_a_code_not_known_fail_the_evaluation(self):
        # An internal error is where the original would have panicked, and
        # a code added to the contract later must not pass a policy.
        for code, reason in ((-32603, "internal"), (-32603, "io_error"), (-32800, "cancelled"),
                             (-32601, "unknown_method"), (-32600, "shutting_down"), (-32700, "invalid_json"),
                             (-32003, "digest_mismatch"), (-32005, "memory_limit"), (-32099, "something_new"),
                             (-32002, "local_address_refused"), (-32002, "blocked"),
                             (-32006, "ambiguous_manifest"), (-32005, "request_timeout"),
                             (-32006, "foreign_layer"), (-32006, "invalid_page_link"),
                             (-32006, "missing_config"), (-32004, "referrers_unsupported")):
            with self.subTest(code=code, reason=reason):
                self.assertFalse(rego.undefined_in_the_original(self.error(code, reason)))
        self.assertFalse(rego.undefined_in_the_original(RPCError.from_object({"code": "-32001", "message": "m"})))
        self.assertFalse(rego.undefined_in_the_original(IncompleteBatch(["b"])))


class CommandTests(unittest.TestCase):
    """`python -m ocirpc.rego` over a policy directory in the style of a
    release policy, against the test registry."""

    def setUp(self):
        self.f = support.fixtures
        self.directory = tempfile.mkdtemp()
        shutil.copytree(POLICY_DIR, self.directory, dirs_exist_ok=True)
        fixtures = {k: self.f[k] for k in ("good", "bad", "missing")}
        with open(os.path.join(self.directory, "fixtures.json"), "w") as data:
            json.dump({"fixtures": fixtures}, data)

    def tearDown(self):
        shutil.rmtree(self.directory)

    def run_command(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = rego.main(["--binary", support.BINARY, *argv])
        return status, out.getvalue(), err.getvalue()

    def test_eval_runs_the_policy_directory_on_an_input(self):
        input_path = os.path.join(self.directory, "input.json")
        with open(input_path, "w") as document:
            json.dump({"images": [self.f["good"], self.f["bad"]]}, document)
        status, out, _ = self.run_command(
            "eval", "--data", self.directory, "--input", input_path,
            "codes := {r.code | some r in data.release[_].deny}")
        self.assertEqual(status, 0)
        self.assertEqual(
            sorted(json.loads(out)[0]["codes"]),
            ["attestations.present", "labels.required_team", "layers.compressed"])

    def test_control_characters_in_what_is_logged_are_written_as_escapes(self):
        # A ref from the policy's input, with a terminal's escapes and a line
        # break: the failure's log line is one line, and holds neither.
        ref = "x\x1b]52;c;ZXZpbA==\x07\x1b[2K\r\nocirpc.rego: forged\x9b31m"
        input_path = os.path.join(self.directory, "input.json")
        with open(input_path, "w") as document:
            json.dump({"ref": ref}, document)
        status, _, err = self.run_command(
            "eval", "--data", self.directory, "--input", input_path, "m := ec.oci.image_manifest(input.ref)")
        self.assertEqual(status, 0, err)
        # (The interpreter's own warnings may be on stderr too.)
        lines = [line for line in err.split("\n") if line.startswith("ocirpc.rego")]
        self.assertEqual(len(lines), 1, err)
        self.assertFalse(any((ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f for c in err), repr(err))
        self.assertIn("x\\u001b]52;c;ZXZpbA==\\u0007\\u001b[2K\\u000d\\u000aocirpc.rego: forged\\u009b31m", lines[0])
        self.assertIn("reason invalid_reference", lines[0])

    def test_test_runs_the_policys_tests(self):
        status, out, _ = self.run_command("test", self.directory)
        self.assertEqual(status, 0, out)
        self.assertIn("PASS: 5/5", out)

    def test_a_failing_test_fails_the_command(self):
        with open(os.path.join(self.directory, "wrong_test.rego"), "w") as source:
            source.write("package wrong_test\n\nimport rego.v1\n\n"
                         "test_the_bad_image_passes if {\n"
                         "\tcount(data.release.labels.deny) == 0 with input as {\"images\": [data.fixtures.bad]}\n}\n")
        status, out, _ = self.run_command("test", self.directory)
        self.assertEqual(status, 1)
        self.assertIn("data.wrong_test.test_the_bad_image_passes: FAIL", out)
        self.assertIn("FAIL: 1/6", out)


if __name__ == "__main__":
    unittest.main()
