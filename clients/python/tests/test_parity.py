"""The clients against the contract: every method and parameter of
protocol/openrpc.json is exposed by `Client` and `AsyncClient`, with a
docstring, and the package is typed."""
import inspect
import json
import os
import unittest

import support
from ocirpc import AsyncClient, Client, errors

CONTRACT = os.path.join(support.ROOT, "protocol", "openrpc.json")
# Protocol plumbing the clients drive themselves, not methods for callers.
PLUMBING = {"initialize", "shutdown", "exit", "rpc.discover", "$/cancelRequest", "$/progress"}
# Parameters a client takes another way: the stream method gives the token.
STREAMED = {"partialResultToken": "iter_image_manifests"}


def python_name(method):
    name = method.split(".")[-1]
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


class ParityTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(CONTRACT) as source:
            cls.contract = json.load(source)

    def methods(self):
        return [m for m in self.contract["methods"] if m["name"] not in PLUMBING]

    def test_every_method_and_parameter_is_exposed_by_both_clients(self):
        self.assertGreaterEqual(len(self.methods()), 12)
        for client in (Client, AsyncClient):
            for method in self.methods():
                name = python_name(method["name"])
                with self.subTest(client=client.__name__, method=method["name"]):
                    function = getattr(client, name, None)
                    self.assertIsNotNone(function, f"{client.__name__}.{name} is missing")
                    parameters = inspect.signature(function).parameters
                    for param in method.get("params", []):
                        if param["name"] in STREAMED:
                            self.assertTrue(hasattr(client, STREAMED[param["name"]]))
                            continue
                        self.assertIn(python_name(param["name"]), parameters)
                    self.assertIn("timeout", parameters)

    def test_every_public_method_has_a_docstring_and_annotations(self):
        for client in (Client, AsyncClient):
            for name, function in inspect.getmembers(client, inspect.isfunction):
                if name.startswith("_"):
                    continue
                with self.subTest(client=client.__name__, method=name):
                    self.assertTrue(inspect.getdoc(function), f"{client.__name__}.{name} has no docstring")
                    signature = inspect.signature(function)
                    self.assertIsNot(signature.return_annotation, inspect.Signature.empty)
                    for parameter in list(signature.parameters.values())[1:]:
                        self.assertIsNot(parameter.annotation, inspect.Parameter.empty, f"{name}({parameter.name})")

    def test_every_error_code_of_the_contract_has_a_constant_and_server_codes_a_class(self):
        codes = {e["code"] for e in self.contract["components"]["errors"].values()}
        constants = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, int)}
        self.assertEqual(codes, constants)
        for code in codes - {-32700, -32600, -32601, -32603}:
            with self.subTest(code=code):
                raised = errors.RPCError.from_object({"code": code, "message": "m"})
                self.assertIsNot(type(raised), errors.RPCError)
                self.assertEqual(type(raised).CODE, code)

    def test_the_package_says_it_is_typed(self):
        self.assertTrue(os.path.exists(os.path.join(support.HERE, "..", "ocirpc", "py.typed")))


if __name__ == "__main__":
    unittest.main()
