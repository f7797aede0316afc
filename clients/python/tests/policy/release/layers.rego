# METADATA
# title: Layers
# description: Every layer is a compressed tar of a known media type.
package release.layers

import rego.v1

_allowed := {
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
}

# METADATA
# title: Compressed layers
# custom:
#   short_name: compressed
deny contains result if {
	some ref in input.images
	some layer in ec.oci.image_manifest(ref).layers
	not layer.mediaType in _allowed
	result := {"code": "layers.compressed", "msg": sprintf("%s: layer %s is %s", [ref, layer.digest, layer.mediaType])}
}
