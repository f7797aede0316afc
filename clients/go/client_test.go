package ocirpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixtures are served by clients/testing/fixture_registry.py (a real
// docker-registry) for the whole test run.
var fixtures map[string]string

func TestMain(m *testing.M) {
	if os.Getenv("OCIRPC_BINARY") == "" {
		root, _ := filepath.Abs("../..")
		os.Setenv("OCIRPC_BINARY", filepath.Join(root, ".build", "release", "ocirpc"))
	}
	registry := exec.Command("python3", "../testing/fixture_registry.py")
	stdin, _ := registry.StdinPipe()
	stdout, _ := registry.StdoutPipe()
	registry.Stderr = os.Stderr
	if err := registry.Start(); err != nil {
		panic(err)
	}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &fixtures) != nil {
		panic("fixture registry did not start")
	}
	code := m.Run()
	stdin.Close()
	registry.Wait()
	os.Exit(code)
}

func start(t *testing.T, args ...string) *Client {
	t.Helper()
	c, err := Start(Options{Args: args})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestImageManifestIsTyped(t *testing.T) {
	c := start(t)
	m, err := c.ImageManifest(context.Background(), fixtures["good"], "")
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.Annotations["v"] != "1" || len(m.Layers) != 1 {
		t.Fatalf("unexpected manifest %+v", m)
	}
	if m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" || m.Config.URLs == nil {
		t.Fatalf("unexpected layer or config %+v %+v", m.Layers[0], m.Config)
	}
}

func TestErrorsCarryCodeReasonAndRef(t *testing.T) {
	c := start(t)
	_, err := c.Descriptor(context.Background(), fixtures["missing"])
	var rpc *RPCError
	if !errors.As(err, &rpc) || rpc.Code != -32001 || rpc.Reason() != "manifest_unknown" || rpc.Ref() != fixtures["missing"] {
		t.Fatalf("unexpected error %v", err)
	}
}

func TestParsedBlobKeepsNumbersExact(t *testing.T) {
	c := start(t)
	raw, err := c.ParsedBlob(context.Background(), fixtures["jsonBlob"])
	if err != nil || string(raw) != `{"n":12345678901234567890}` {
		t.Fatalf("got %s, %v", raw, err)
	}
}

func TestStreamImageManifestsDeliversEachRefOnce(t *testing.T) {
	c := start(t)
	refs := []string{fixtures["good"], fixtures["bad"], fixtures["missing"], fixtures["good"]}
	out, errc := c.StreamImageManifests(context.Background(), refs)
	seen := map[string]StreamedManifest{}
	for item := range out {
		if _, dup := seen[item.Ref]; dup {
			t.Fatalf("%s reported twice", item.Ref)
		}
		seen[item.Ref] = item
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[fixtures["bad"]].Manifest.Annotations["v"] != "2" || seen[fixtures["missing"]].Err == nil {
		t.Fatalf("unexpected stream %+v", seen)
	}
	all, err := c.ImageManifests(context.Background(), refs)
	if err != nil || len(all) != 2 || all[fixtures["good"]] == nil {
		t.Fatalf("batch: %v %v", all, err)
	}
}

func TestCancellingTheContextCancelsTheRequest(t *testing.T) {
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.ImageManifest(ctx, silent.Addr().String()+"/never/answers:v1", "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected the deadline, got %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	stats, err := c.Stats(context.Background())
	if err != nil || string(stats["inFlight"]) != "0" {
		t.Fatalf("request still in flight on the server: %s %v", stats["inFlight"], err)
	}
}

func TestAServerThatDiesReportsItsStderr(t *testing.T) {
	c, err := Start(Options{Args: []string{"--retries", "many"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stats(context.Background())
	var died *ServerDiedError
	if !errors.As(err, &died) || died.ExitCode != 2 || !strings.Contains(died.Stderr, "--retries") {
		t.Fatalf("expected ServerDiedError with the reason on stderr, got %v", err)
	}
	c.Close()
}
