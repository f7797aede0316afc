# METADATA
# title: Labels
# description: Every image names the team that owns it.
package release.labels

import rego.v1

# METADATA
# title: Required team label
# custom:
#   short_name: required_team
deny contains result if {
	some ref in input.images
	manifest := ec.oci.image_manifest(ref)
	config := ec.oci.parsed_blob(_by_digest(ref, manifest.config.digest))
	not config.config.Labels["org.example.team"]
	result := {"code": "labels.required_team", "msg": sprintf("%s has no org.example.team label", [ref])}
}

_by_digest(ref, digest) := sprintf("%s@%s", [regex.replace(ref, `(:[^:/@]+)?(@.*)?$`, ""), digest])
