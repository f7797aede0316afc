"""The ec.oci.* builtins for an embedded OPA engine (`opa_bindings` from
the `opa-golib-python-bindings` package, the `rego` extra), answered by an
ocirpc `Client`; and a command that runs a policy directory with them:

    python -m ocirpc.rego eval --data DIR --input FILE QUERY
    python -m ocirpc.rego test DIR

A builtin that fails is undefined, as in the policy CLI, and the failure is
logged (logger `ocirpc.rego`: function, ref, code, reason); in strict mode
it raises instead, failing the evaluation. A failure the original would
not have answered undefined (a server that died or failed, a limit of the
server's, a call past `--timeout`, content that is not what its digest
says, content the server refuses and the original reads) fails the
evaluation in either mode (`undefined_in_the_original`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .client import Client
from .errors import (ACCESS_DENIED, INVALID_PARAMS, NOT_FOUND, REGISTRY_UNAVAILABLE, UNSUPPORTED_CONTENT, OcirpcError,
                     RPCError)

LOG = logging.getLogger("ocirpc.rego")

#: builtin name -> (arity, how to call the client)
BUILTINS: Dict[str, Tuple[int, Callable[..., Any]]] = {
    "ec.oci.blob": (1, lambda c, ref: c.blob(ref)),
    "ec.oci.parsed_blob": (1, lambda c, ref: c.parsed_blob(ref)),
    "ec.oci.blob_files": (2, lambda c, ref, paths: c.blob_files(ref, paths)),
    "ec.oci.descriptor": (1, lambda c, ref: c.descriptor(ref)),
    "ec.oci.image_manifest": (1, lambda c, ref: c.image_manifest(ref)),
    "ec.oci.image_manifests": (1, lambda c, refs: _image_manifests(c, refs)),
    "ec.oci.image_files": (2, lambda c, ref, paths: c.image_files(ref, paths)),
    "ec.oci.image_index": (1, lambda c, ref: c.image_index(ref)),
    "ec.oci.image_tag_refs": (1, lambda c, ref: c.image_tag_refs(ref)),
    "ec.oci.image_referrers": (1, lambda c, ref: c.image_referrers(ref)),
}


def register_builtins(engine: Any, client: Client, names: Optional[Iterable[str]] = None, strict: bool = False) -> None:
    """Registers the builtins (all, or `names`) on `engine`. A failing call
    is logged and undefined, or with `strict` raises (failing the eval);
    one the original does not answer undefined (`undefined_in_the_original`)
    fails the eval either way."""
    wanted = None if names is None else set(names)
    for name, (arity, call) in BUILTINS.items():
        if wanted is not None and name not in wanted:
            continue

        def builtin(*args: Any, _name: str = name, _call: Callable[..., Any] = call) -> Any:
            try:
                return _call(client, *args)
            except OcirpcError as error:
                _log_failure(_name, args, error)
                if strict or not undefined_in_the_original(error):
                    raise
                return None

        engine.register_function(name, builtin, arity=arity)


#: Codes the original builtins answer undefined too: the registry says the
#: thing is not there, refuses the credentials or fails, the call's own
#: arguments are refused, content neither can read. Every other code fails
#: the evaluation, so that one added to the contract later fails closed.
UNDEFINED_CODES = frozenset({NOT_FOUND, ACCESS_DENIED, REGISTRY_UNAVAILABLE, INVALID_PARAMS, UNSUPPORTED_CONTENT})

#: Reasons of those codes for which the server refuses what the original
#: answers: an index with an entry runtimes also take for the platform, a
#: YAML file go-yaml and libyaml read differently, a manifest Go reads
#: otherwise than a lookup of its keys or that is also an index, a blob that is not UTF-8, layers
#: runtimes unpack or stack into different files, a foreign layer the
#: registry does not hold (the original fetches it from its URLs), an
#: image whose config the registry does not hold (the original lists its
#: files without it), a referrers page link the server refuses (the
#: original reads the first page only), a Referrers API answer the original
#: falls back from to the referrers tag (a 400 or 406, or not an index);
#: and the server's own refusals, which the original does not
#: make: a registry the user blocked (registries.conf), a redirect into a
#: local network.
ANSWERED_IN_THE_ORIGINAL = frozenset({
    "ambiguous_platform", "ambiguous_yaml", "ambiguous_manifest", "binary_content", "corrupt_archive", "foreign_layer",
    "missing_config", "invalid_page_link", "referrers_unsupported", "blocked", "local_address_refused"})


def undefined_in_the_original(error: OcirpcError) -> bool:
    """Whether the original builtins answer undefined where the server
    failed with `error`: a registry's refusal or failure, the call's own
    arguments refused, content they cannot read either (`UNDEFINED_CODES`).

    Not so, and the evaluation fails, for everything else:
    - a server that died: the original runs in the evaluating process,
      which would have gone down with it;
    - a limit of the server's, or the runner's own deadline for a call:
      the original has neither (it reads the content, or waits, or its
      process runs out);
    - content that is not what its digest says (`-32003`): tampering on
      the way, or a layer whose bytes are not its config's `diff_ids`,
      which the original reads and a node holding that layer runs instead;
    - content the server refuses and the original answers, and the
      server's own refusals (`ANSWERED_IN_THE_ORIGINAL`): a registry the
      user blocked answering undefined would pass every image from it;
    - the server's own failure (`-32603`: a panic, in the original, takes
      the evaluation down), a cancellation, a code the runner does not know.
    An image can be made to fail many of these calls, and undefined would
    let every deny rule over them pass."""
    if not isinstance(error, RPCError) or error.code not in UNDEFINED_CODES:
        return False
    return error.reason not in ANSWERED_IN_THE_ORIGINAL


def _image_manifests(client: Client, refs: Iterable[str]) -> Dict[str, Any]:
    """The batch as the original answers it: a ref that fails is left out,
    except one whose failure the original would not have had
    (`undefined_in_the_original`), which fails the call: left out, an image
    made to fail it would pass every rule over the batch's values."""
    found: Dict[str, Any] = {}
    # Closed on the way out, so that a failing ref cancels the rest of the
    # batch on the server at once.
    with contextlib.closing(client.iter_image_manifests(sorted(set(refs)))) as stream:
        for ref, outcome in stream:
            if isinstance(outcome, OcirpcError):
                if not undefined_in_the_original(outcome):
                    raise outcome
                continue
            found[ref] = outcome
    return found


def _log_failure(name: str, args: Sequence[Any], error: OcirpcError) -> None:
    ref = args[0] if args and isinstance(args[0], str) else json.dumps(args[0] if args else None)[:200]
    if isinstance(error, RPCError):
        LOG.warning("%s(%s) failed: code %s, reason %s: %s", name, ref, error.code, error.reason, error.message)
    else:
        LOG.warning("%s(%s) failed: %s", name, ref, error)


# -- the command ---------------------------------------------------------------

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """`text` with every control character written as `\\u00XX`, for a line
    on a terminal: an error's message may hold a registry's words, and a
    ref a policy's input; their line breaks would forge lines and their
    escapes reach the terminal (a title, the clipboard)."""
    return _CONTROLS.sub(lambda match: "\\u%04x" % ord(match.group()), text)


class _PrintableFormatter(logging.Formatter):
    """The command's log lines, one line each, with no control character."""

    def format(self, record: logging.LogRecord) -> str:
        return _printable(super().format(record))


def _policy_files(directory: str) -> List[str]:
    found: List[str] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found.extend(os.path.join(root, name) for name in sorted(files))
    return found


def _load(engine: Any, directories: Sequence[str]) -> Dict[str, str]:
    """Adds every .rego module and every .json (and, with PyYAML, .yaml)
    data file under `directories`; returns the modules' sources by path."""
    modules: Dict[str, str] = {}
    for directory in directories:
        if not os.path.isdir(directory):
            raise SystemExit(f"ocirpc.rego: {directory} is not a directory")
        for path in _policy_files(directory):
            if path.endswith(".rego"):
                with open(path, encoding="utf-8") as source:
                    modules[path] = source.read()
                engine.add_policy(path, modules[path])
            elif path.endswith(".json"):
                with open(path, encoding="utf-8") as data:
                    engine.add_data(json.load(data))
            elif path.endswith((".yaml", ".yml")):
                try:
                    import yaml  # type: ignore[import-untyped]
                except ImportError:
                    LOG.warning("%s skipped: reading YAML data needs PyYAML", path)
                    continue
                with open(path, encoding="utf-8") as data:
                    engine.add_data(yaml.safe_load(data))
    return modules


_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.MULTILINE)


def _tests(modules: Dict[str, str]) -> List[Tuple[str, str]]:
    """(package, rule) of every `test_` rule, in file order, once each."""
    found: List[Tuple[str, str]] = []
    for source in modules.values():
        package = _PACKAGE.search(source)
        if package is None:
            continue
        for rule in _TEST_RULE.findall(source):
            if (package.group(1), rule) not in found:
                found.append((package.group(1), rule))
    return found


def _arguments(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ocirpc.rego",
        description="Runs Rego policies with the ec.oci.* builtins answered by ocirpc.")
    parser.add_argument("--binary", help="the ocirpc binary (default: $OCIRPC_BINARY, else ocirpc on PATH)")
    parser.add_argument(
        "--server-arg", action="append", default=[], metavar="ARG", help="an argument for ocirpc (repeatable)")
    parser.add_argument("--strict", action="store_true", help="a failing builtin fails the evaluation")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per builtin call (default 300); a call past it fails the evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("eval", help="evaluate a query, print its results as JSON")
    evaluate.add_argument("--data", "-d", action="append", default=[], metavar="DIR", help="policies and data")
    evaluate.add_argument("--input", "-i", metavar="FILE", help="the input document (JSON)")
    evaluate.add_argument("--fail", action="store_true", help="exit 1 when the query has no result")
    evaluate.add_argument("query")
    test = commands.add_parser("test", help="run the policies' test_ rules")
    test.add_argument("directories", nargs="+", metavar="DIR")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command; returns its exit status."""
    options = _arguments(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    try:
        from opa_bindings import OpaEngine, OpaError, OpaUndefinedError  # type: ignore[import-untyped]
    except ImportError:
        print("ocirpc.rego needs the rego extra: pip install 'ocirpc[rego]'", file=sys.stderr)
        return 2
    with Client(binary=options.binary, args=options.server_arg, timeout=options.timeout) as client:
        engine = OpaEngine()
        try:
            register_builtins(engine, client, strict=options.strict)
            if options.command == "eval":
                _load(engine, options.data)
                document = None
                if options.input:
                    with open(options.input, encoding="utf-8") as source:
                        document = json.load(source)
                try:
                    results = engine.eval_query(options.query, input=document)
                except OpaError as error:
                    print(f"ocirpc.rego: {_printable(str(error))}", file=sys.stderr)
                    return 1
                json.dump(results, sys.stdout, indent=2, sort_keys=True)
                print()
                return 1 if options.fail and not results else 0
            modules = _load(engine, options.directories)
            passed = failed = 0
            for package, rule in _tests(modules):
                try:
                    ok = engine.eval_document(f"{package}.{rule}") is True
                    detail = "" if ok else " (not true)"
                except OpaUndefinedError:
                    ok, detail = False, " (undefined)"
                except OpaError as error:
                    ok, detail = False, f" ({_printable(str(error))})"
                print(f"data.{package}.{rule}: {'PASS' if ok else 'FAIL'}{detail}")
                passed, failed = passed + ok, failed + (not ok)
            print(f"PASS: {passed}/{passed + failed}" if failed == 0 else f"FAIL: {failed}/{passed + failed}")
            return 0 if failed == 0 and passed > 0 else 1
        finally:
            engine.close()


if __name__ == "__main__":
    sys.exit(main())
