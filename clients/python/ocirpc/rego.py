"""The ec.oci.* builtins for an embedded OPA engine (`opa_bindings` from
the `opa-golib-python-bindings` package), answered by an ocirpc `Client`.

A failure makes the builtin undefined, as in the policy CLI."""
from .errors import OcirpcError

#: builtin name -> (arity, how to call the client)
BUILTINS = {
    "ec.oci.blob": (1, lambda c, ref: c.blob(ref)),
    "ec.oci.parsed_blob": (1, lambda c, ref: c.parsed_blob(ref)),
    "ec.oci.blob_files": (2, lambda c, ref, paths: c.blob_files(ref, paths)),
    "ec.oci.descriptor": (1, lambda c, ref: c.descriptor(ref)),
    "ec.oci.image_manifest": (1, lambda c, ref: c.image_manifest(ref)),
    "ec.oci.image_manifests": (1, lambda c, refs: c.image_manifests(sorted(set(refs)))),
    "ec.oci.image_files": (2, lambda c, ref, paths: c.image_files(ref, paths)),
    "ec.oci.image_index": (1, lambda c, ref: c.image_index(ref)),
    "ec.oci.image_tag_refs": (1, lambda c, ref: c.image_tag_refs(ref)),
    "ec.oci.image_referrers": (1, lambda c, ref: c.image_referrers(ref)),
}


def register_builtins(engine, client, names=None):
    """Registers the builtins (all, or `names`) on `engine`."""
    for name, (arity, call) in BUILTINS.items():
        if names is not None and name not in names:
            continue

        def builtin(*args, _call=call):
            try:
                return _call(client, *args)
            except OcirpcError:
                return None

        engine.register_function(name, builtin, arity=arity)
