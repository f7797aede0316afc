package ocirpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	t.Cleanup(func() { c.Close(context.Background()) })
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
	stream := c.StreamImageManifests(context.Background(), refs, "")
	seen := map[string]StreamedManifest{}
	for item := range stream.C {
		if _, dup := seen[item.Ref]; dup {
			t.Fatalf("%s reported twice", item.Ref)
		}
		seen[item.Ref] = item
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[fixtures["bad"]].Manifest.Annotations["v"] != "2" || seen[fixtures["missing"]].Err == nil {
		t.Fatalf("unexpected stream %+v", seen)
	}
	all, err := c.ImageManifests(context.Background(), refs, "linux/amd64")
	if err != nil || len(all) != 2 || all[fixtures["good"]] == nil {
		t.Fatalf("batch: %v %v", all, err)
	}
}

func TestErrorsMatchTheSentinelOfTheirCode(t *testing.T) {
	c := start(t)
	_, err := c.ImageManifest(context.Background(), fixtures["missing"], "")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrAccessDenied) {
		t.Fatalf("expected ErrNotFound only, got %v", err)
	}
	_, err = c.Descriptor(context.Background(), "Not A Ref")
	if !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("expected ErrInvalidParams, got %v", err)
	}
}

func inFlight(t *testing.T, c *Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stats, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return string(stats["inFlight"])
}

func TestAConsumerThatStopsReadingHoldsUpNoOtherCall(t *testing.T) {
	c := start(t)
	// Far more outcomes than any buffer, none of them read.
	var refs []string
	for i := 0; i < 300; i++ {
		refs = append(refs, fmt.Sprintf("%s-%d", fixtures["missing"], i))
	}
	stream := c.StreamImageManifests(context.Background(), refs, "")
	deadline := time.Now().Add(20 * time.Second)
	for inFlight(t, c) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("the batch never finished")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Descriptor(context.Background(), fixtures["good"]); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	stream.Close()
}

func TestClosingAStreamEarlyCancelsTheBatchOnTheServer(t *testing.T) {
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	c := start(t)
	stream := c.StreamImageManifests(context.Background(), []string{fixtures["good"], silent.Addr().String() + "/never/answers:v1"}, "")
	first := <-stream.C
	if first.Ref != fixtures["good"] || first.Err != nil {
		t.Fatalf("unexpected first outcome %+v", first)
	}
	stream.Close()
	if _, open := <-stream.C; open {
		t.Fatal("C still open after Close")
	}
	if !errors.Is(stream.Err(), context.Canceled) {
		t.Fatalf("expected context.Canceled, got %v", stream.Err())
	}
	if !inFlightReaches(t, c, "0") {
		t.Fatal("the batch is still running on the server")
	}
}

func TestCloseKillsAServerThatOutlivesTheDeadline(t *testing.T) {
	// A "server" that never answers and ignores its input closing.
	c, err := Start(Options{Binary: "/bin/sh", Args: []string{"-c", "exec sleep 60"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected the deadline, got %v", err)
	}
	if waited := time.Since(began); waited > 10*time.Second {
		t.Fatalf("Close took %v", waited)
	}
	if c.cmd.ProcessState == nil {
		t.Fatal("the process was not reaped")
	}
}

func TestClearCacheEmptiesTheMemoryCache(t *testing.T) {
	c := start(t)
	if _, err := c.ImageManifest(context.Background(), fixtures["good"], ""); err != nil {
		t.Fatal(err)
	}
	if err := c.ClearCache(context.Background()); err != nil {
		t.Fatal(err)
	}
	stats, _ := c.Stats(context.Background())
	var cache struct {
		Used int `json:"used"`
	}
	if json.Unmarshal(stats["cacheBytes"], &cache) != nil || cache.Used != 0 {
		t.Fatalf("cache not empty: %s", stats["cacheBytes"])
	}
}

func TestBlobTakesAnEncoding(t *testing.T) {
	c := start(t)
	text, err := c.Blob(context.Background(), fixtures["jsonBlob"], "base64")
	if err != nil || text != "eyJuIjogMTIzNDU2Nzg5MDEyMzQ1Njc4OTB9" {
		t.Fatalf("got %q, %v", text, err)
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
	if !inFlightReaches(t, c, "0") {
		t.Fatalf("request still in flight on the server: %s", inFlight(t, c))
	}
}

// inFlightReaches reports whether the server's count of requests in flight
// comes to count within 10 s: cancelling takes a moment, longer on a loaded
// machine.
func inFlightReaches(t *testing.T, c *Client, count string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for inFlight(t, c) != count {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
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
	c.Close(context.Background())
}

// standIn starts a client on a stand-in for a server gone wrong: a shell
// script that reads the first request, then runs body.
func standIn(t *testing.T, body string) *Client {
	t.Helper()
	script := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nread request\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Start(Options{Binary: script})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func TestAServerCutOffMidAnswerReportsItsDeath(t *testing.T) {
	c := standIn(t, `printf '{"jsonrpc":"2.0","id":1,"result":{"cut'`+"\nexit 9\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Stats(ctx)
	var died *ServerDiedError
	if !errors.As(err, &died) || died.ExitCode != 9 {
		t.Fatalf("expected ServerDiedError with status 9, got %v", err)
	}
}

func TestMessagesTheReaderCannotTakeArePassedOverAndAnIdAfterTheResultIsRead(t *testing.T) {
	c := standIn(t, `echo '{"jsonrpc":"2.0","id":{"a":1},"result":1}'
echo '{"jsonrpc":"2.0","method":"$/progress","params":[1]}'
echo 'not JSON'
echo '{"jsonrpc":"2.0","result":{"ok":true},"id":1}'
exec sleep 60
`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stats, err := c.Stats(ctx)
	if err != nil || string(stats["ok"]) != "true" {
		t.Fatalf("expected {\"ok\": true}, got %v %v", stats, err)
	}
}

// Left out silently, a ref the batch never answered would read as one that
// failed: a policy that lets failing refs go would pass it.
func TestABatchThatEndsWithoutARefIsAnError(t *testing.T) {
	c := standIn(t, `token=$(printf '%s' "$request" | sed -n 's/.*"partialResultToken":"\([^"]*\)".*/\1/p')
id=$(printf '%s' "$request" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
printf '{"jsonrpc":"2.0","method":"$/progress","params":{"token":"%s","value":{"ref":"a","manifest":{}}}}\n' "$token"
printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id"
exec sleep 60
`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := c.StreamImageManifests(ctx, []string{"a", "b", "a"}, "")
	var seen []string
	for item := range stream.C {
		seen = append(seen, item.Ref)
	}
	var incomplete *IncompleteBatchError
	if err := stream.Err(); !errors.As(err, &incomplete) || strings.Join(incomplete.Missing, ",") != "b" {
		t.Fatalf("expected IncompleteBatchError for b, got %v", err)
	}
	if strings.Join(seen, ",") != "a" {
		t.Fatalf("expected a alone, got %v", seen)
	}
}

func TestAResultThatIsNotAPointerIsAnError(t *testing.T) {
	c := start(t)
	var stats map[string]json.RawMessage
	var invalid *json.InvalidUnmarshalError
	if err := c.Call(context.Background(), "server.stats", nil, stats); !errors.As(err, &invalid) {
		t.Fatalf("expected json.InvalidUnmarshalError, got %v", err)
	}
	if err := c.Call(context.Background(), "server.stats", nil, &stats); err != nil || stats["inFlight"] == nil {
		t.Fatalf("expected the stats, got %v %v", stats, err)
	}
}
