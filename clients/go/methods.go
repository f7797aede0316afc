package ocirpc

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
)

// Blob returns the blob's content as text (ref must name a digest).
func (c *Client) Blob(ctx context.Context, ref string) (string, error) {
	var s string
	return s, c.Call(ctx, "ec.oci.blob", []string{ref}, &s)
}

// ParsedBlob returns the blob parsed as JSON, numbers kept exact.
func (c *Client) ParsedBlob(ctx context.Context, ref string) (json.RawMessage, error) {
	var v json.RawMessage
	return v, c.Call(ctx, "ec.oci.parsed_blob", []string{ref}, &v)
}

// BlobFiles returns the tar entries of the blob named exactly as paths, parsed.
func (c *Client) BlobFiles(ctx context.Context, ref string, paths []string) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	return v, c.Call(ctx, "ec.oci.blob_files", []interface{}{ref, nonNil(paths)}, &v)
}

// Descriptor returns the descriptor of what ref names.
func (c *Client) Descriptor(ctx context.Context, ref string) (*Descriptor, error) {
	var d Descriptor
	return &d, c.Call(ctx, "ec.oci.descriptor", []string{ref}, &d)
}

// ImageManifest returns the image manifest (an index resolves to platform,
// "" meaning the server's default).
func (c *Client) ImageManifest(ctx context.Context, ref, platform string) (*Manifest, error) {
	params := map[string]interface{}{"ref": ref}
	if platform != "" {
		params["platform"] = platform
	}
	var m Manifest
	return &m, c.Call(ctx, "ec.oci.image_manifest", params, &m)
}

// ImageManifests returns the manifests of refs; refs that fail are left out.
func (c *Client) ImageManifests(ctx context.Context, refs []string) (map[string]*Manifest, error) {
	var m map[string]*Manifest
	return m, c.Call(ctx, "ec.oci.image_manifests", []interface{}{nonNil(refs)}, &m)
}

var tokens int64

// StreamImageManifests sends each distinct ref's outcome on the returned
// channel as soon as the server finishes it; the channel closes when the
// batch is done, and the error channel then yields the call's error (nil
// on success). Cancelling ctx cancels the batch on the server.
func (c *Client) StreamImageManifests(ctx context.Context, refs []string) (<-chan StreamedManifest, <-chan error) {
	token := fmt.Sprintf("go-%d", atomic.AddInt64(&tokens, 1))
	key, _ := json.Marshal(token)
	raw := make(chan json.RawMessage, 64)
	c.mu.Lock()
	c.streams[string(key)] = raw
	c.mu.Unlock()
	out := make(chan StreamedManifest)
	errc := make(chan error, 1)
	finished := make(chan error, 1)
	go func() {
		finished <- c.call(ctx, "ec.oci.image_manifests",
			map[string]interface{}{"refs": nonNil(refs), "partialResultToken": token}, nil, token)
	}()
	go func() {
		defer close(out)
		emit := func(value json.RawMessage) {
			var v struct {
				Ref      string    `json:"ref"`
				Manifest *Manifest `json:"manifest"`
				Error    *RPCError `json:"error"`
			}
			if json.Unmarshal(value, &v) != nil {
				return
			}
			item := StreamedManifest{Ref: v.Ref, Manifest: v.Manifest}
			if v.Error != nil {
				item.Err = v.Error
			}
			out <- item
		}
		for {
			select {
			case value := <-raw:
				emit(value)
			case err := <-finished:
				// Every progress notification precedes the response: drain them.
				for drained := false; !drained; {
					select {
					case value := <-raw:
						emit(value)
					default:
						drained = true
					}
				}
				c.mu.Lock()
				delete(c.streams, string(key))
				c.mu.Unlock()
				errc <- err
				return
			}
		}
	}()
	return out, errc
}

// ImageFiles returns the files of the image's flattened filesystem in the
// directories paths, parsed (ref must name a digest).
func (c *Client) ImageFiles(ctx context.Context, ref string, paths []string) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	return v, c.Call(ctx, "ec.oci.image_files", []interface{}{ref, nonNil(paths)}, &v)
}

// ImageIndex returns the index ref names.
func (c *Client) ImageIndex(ctx context.Context, ref string) (*Index, error) {
	var v Index
	return &v, c.Call(ctx, "ec.oci.image_index", []string{ref}, &v)
}

// ImageTagRefs returns the cosign tags (.sig, .att, .sbom) that exist for the image.
func (c *Client) ImageTagRefs(ctx context.Context, ref string) ([]string, error) {
	var v []string
	return v, c.Call(ctx, "ec.oci.image_tag_refs", []string{ref}, &v)
}

// ImageReferrers returns the manifests that refer to the image.
func (c *Client) ImageReferrers(ctx context.Context, ref string) ([]Referrer, error) {
	var v []Referrer
	return v, c.Call(ctx, "ec.oci.image_referrers", []string{ref}, &v)
}

// Stats returns the server's counters.
func (c *Client) Stats(ctx context.Context) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	return v, c.Call(ctx, "server.stats", nil, &v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
