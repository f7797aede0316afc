# METADATA
# title: Attestations
# description: Every image has an attestation, and every image can be fetched.
package release.attestations

import rego.v1

# METADATA
# title: Attestation present
# custom:
#   short_name: present
deny contains result if {
	some ref in input.images
	ec.oci.image_manifests({r | some r in input.images})[ref]
	count([tag | some tag in ec.oci.image_tag_refs(ref); endswith(tag, ".att")]) == 0
	result := {"code": "attestations.present", "msg": sprintf("%s has no attestation", [ref])}
}

# METADATA
# title: Image reachable
# custom:
#   short_name: reachable
deny contains result if {
	some ref in input.images
	not ec.oci.image_manifests({r | some r in input.images})[ref]
	result := {"code": "attestations.reachable", "msg": sprintf("%s cannot be fetched", [ref])}
}
