package ocirpc

// Descriptor is the descriptor object the builtins return: every key is
// always present; Platform only when the descriptor has one.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Size         int64             `json:"size"`
	Digest       string            `json:"digest"`
	Data         string            `json:"data"`
	URLs         []string          `json:"urls"`
	Annotations  map[string]string `json:"annotations"`
	ArtifactType string            `json:"artifactType"`
	Platform     *Platform         `json:"platform,omitempty"`
}

// Platform of an index entry.
type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version"`
	OSFeatures   []string `json:"os.features"`
	Variant      string   `json:"variant"`
	Features     []string `json:"features"`
}

// Manifest is the result of ImageManifest.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations"`
	Subject       *Descriptor       `json:"subject,omitempty"`
}

// Index is the result of ImageIndex.
type Index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []Descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations"`
	Subject       *Descriptor       `json:"subject,omitempty"`
}

// Referrer is one entry of ImageReferrers.
type Referrer struct {
	MediaType    string            `json:"mediaType"`
	Size         int64             `json:"size"`
	Digest       string            `json:"digest"`
	ArtifactType string            `json:"artifactType"`
	Ref          string            `json:"ref"`
	Annotations  map[string]string `json:"annotations"`
}

// StreamedManifest is one ref's outcome in StreamImageManifests.
type StreamedManifest struct {
	Ref      string
	Manifest *Manifest
	Err      error
}
