package release_test

import rego.v1

import data.release.attestations
import data.release.labels
import data.release.layers

# The images are the test registry's, named in data.fixtures (written by the test).

test_a_compliant_image_passes if {
	count(labels.deny) == 0 with input as {"images": [data.fixtures.good]}
	count(layers.deny) == 0 with input as {"images": [data.fixtures.good]}
	count(attestations.deny) == 0 with input as {"images": [data.fixtures.good]}
}

test_an_unlabelled_image_is_denied if {
	some result in labels.deny with input as {"images": [data.fixtures.bad]}
	result.code == "labels.required_team"
}

test_an_uncompressed_layer_is_denied if {
	some result in layers.deny with input as {"images": [data.fixtures.bad]}
	result.code == "layers.compressed"
}

test_a_missing_attestation_is_denied if {
	some result in attestations.deny with input as {"images": [data.fixtures.bad]}
	result.code == "attestations.present"
}

test_a_missing_image_is_denied if {
	some result in attestations.deny with input as {"images": [data.fixtures.missing]}
	result.code == "attestations.reachable"
}
