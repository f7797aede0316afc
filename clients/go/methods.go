package ocirpc

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Blob returns the blob's content as text (ref must name a digest);
// encoding "base64" for bytes that are not UTF-8, "" for the server's
// default ("utf8").
func (c *Client) Blob(ctx context.Context, ref string, encoding string) (string, error) {
	var s string
	return s, c.Call(ctx, "ec.oci.blob", named("ref", ref, "encoding", encoding), &s)
}

// ParsedBlob returns the blob parsed as JSON or YAML, numbers kept exact.
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
// "os/arch[/variant]", "" meaning the server's default).
func (c *Client) ImageManifest(ctx context.Context, ref string, platform string) (*Manifest, error) {
	var m Manifest
	return &m, c.Call(ctx, "ec.oci.image_manifest", named("ref", ref, "platform", platform), &m)
}

// ImageManifests returns the manifests of refs (indexes resolved to
// platform, "" meaning the server's default); refs that fail are left out,
// as the original leaves them out, whatever the failure (a limit of the
// server's too): StreamImageManifests tells each ref's.
func (c *Client) ImageManifests(ctx context.Context, refs []string, platform string) (map[string]*Manifest, error) {
	var m map[string]*Manifest
	params := named("platform", platform)
	params["refs"] = nonNil(refs)
	return m, c.Call(ctx, "ec.oci.image_manifests", params, &m)
}

var tokens int64

// ManifestStream is a running ec.oci.image_manifests batch: each distinct
// ref's outcome arrives on C as soon as the server finishes it, and C is
// closed when the batch ends, is cancelled (ctx), or is closed (Close).
type ManifestStream struct {
	// C delivers the outcomes; it is closed at the end.
	C <-chan StreamedManifest

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	err      error
}

// Close stops the stream early: the rest of the batch is cancelled on the
// server and C is closed. Safe to call more than once, and after the end.
func (s *ManifestStream) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Err waits for the end of the stream and returns the call's outcome: nil
// when the batch finished, else its error (ctx's when cancelled,
// context.Canceled after Close).
func (s *ManifestStream) Err() error {
	<-s.done
	return s.err
}

// StreamImageManifests starts the batch over refs (indexes resolved to
// platform, "" for the server's default). Read C to the end, or Close the
// stream (or cancel ctx) when done early: a consumer that stops reading
// holds up no other call, but keeps the batch running until it does.
func (c *Client) StreamImageManifests(ctx context.Context, refs []string, platform string) *ManifestStream {
	token := fmt.Sprintf("go-%d", atomic.AddInt64(&tokens, 1))
	key, _ := json.Marshal(token)
	queue := newProgressQueue()
	c.mu.Lock()
	c.streams[string(key)] = queue
	c.mu.Unlock()
	out := make(chan StreamedManifest)
	s := &ManifestStream{C: out, stop: make(chan struct{}), done: make(chan struct{})}
	callCtx, cancel := context.WithCancel(ctx)
	finished := make(chan error, 1)
	params := named("platform", platform, "partialResultToken", token)
	params["refs"] = nonNil(refs)
	unanswered := make(map[string]bool, len(refs))
	for _, ref := range refs {
		unanswered[ref] = true
	}
	go func() { finished <- c.Call(callCtx, "ec.oci.image_manifests", params, nil) }()
	go func() {
		defer close(s.done)
		defer close(out)
		defer cancel()
		defer func() {
			c.mu.Lock()
			delete(c.streams, string(key))
			c.mu.Unlock()
		}()
		// send delivers the queued outcomes; false when the consumer or ctx stopped.
		send := func() bool {
			for _, value := range queue.take() {
				item, ok := decodeStreamed(value)
				if !ok {
					continue
				}
				delete(unanswered, item.Ref)
				select {
				case out <- item:
				case <-s.stop:
					return false
				case <-ctx.Done():
					return false
				}
			}
			return true
		}
		for {
			select {
			case <-queue.ready:
				if send() {
					continue
				}
			case err := <-finished:
				// Every progress notification precedes the response.
				if send() && err == nil && len(unanswered) > 0 {
					missing := make([]string, 0, len(unanswered))
					for ref := range unanswered {
						missing = append(missing, ref)
					}
					sort.Strings(missing)
					err = &IncompleteBatchError{Missing: missing}
				}
				s.err = err
				return
			case <-s.stop:
			case <-ctx.Done():
			}
			cancel()
			s.err = <-finished
			return
		}
	}()
	return s
}

func decodeStreamed(value json.RawMessage) (StreamedManifest, bool) {
	var v struct {
		Ref      string    `json:"ref"`
		Manifest *Manifest `json:"manifest"`
		Error    *RPCError `json:"error"`
	}
	if json.Unmarshal(value, &v) != nil {
		return StreamedManifest{}, false
	}
	item := StreamedManifest{Ref: v.Ref, Manifest: v.Manifest}
	if v.Error != nil {
		item.Err = v.Error
	}
	return item, true
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

// Stats returns the server's counters (server.stats).
func (c *Client) Stats(ctx context.Context) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	return v, c.Call(ctx, "server.stats", nil, &v)
}

// ClearCache drops the server's in-memory caches (server.clearCache).
func (c *Client) ClearCache(ctx context.Context) error {
	return c.Call(ctx, "server.clearCache", nil, nil)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// named builds named params from key, value pairs, leaving out empty values.
func named(pairs ...string) map[string]interface{} {
	params := map[string]interface{}{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			params[pairs[i]] = pairs[i+1]
		}
	}
	return params
}
