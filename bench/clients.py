"""bench/run clients: how long each client library takes to hand its caller
one large answer, the `ec.oci.image_manifests` batch over N manifests of
about P bytes of annotations each (15 MB with the defaults), answered from
the server's memory cache so that the client's own reading is what is timed;
then the same batch streamed (`$/progress`), each manifest handed over as
it comes.

Each client (Python `Client`, Python `AsyncClient`, Go, TypeScript) runs
in a process of its own: it spawns the server, asks the batch once to warm
the cache, then times --rounds more calls and prints the seconds of each.
With --baseline-clients DIR (the `clients/` folder of another checkout,
e.g. the commit before a change: `git worktree add /tmp/before <commit>`),
that tree's clients run too, alternating with this tree's in every round.
The figure is the median of the rounds.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PYTHON_SYNC = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ocirpc import Client
refs = json.load(open(sys.argv[2])); rounds = int(sys.argv[3])
with Client(timeout=600) as client:
    client.image_manifests(refs)
    times = {"batch": [], "stream": []}
    for _ in range(rounds):
        start = time.perf_counter(); answer = client.image_manifests(refs); times["batch"].append(time.perf_counter() - start)
        assert len(answer) == len(refs)
        start = time.perf_counter(); count = sum(1 for _ in client.iter_image_manifests(refs))
        times["stream"].append(time.perf_counter() - start)
        assert count == len(refs)
print(json.dumps(times))
"""

PYTHON_ASYNC = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
from ocirpc import AsyncClient
refs = json.load(open(sys.argv[2])); rounds = int(sys.argv[3])
async def main():
    async with AsyncClient(timeout=600) as client:
        await client.image_manifests(refs)
        times = {"batch": [], "stream": []}
        for _ in range(rounds):
            start = time.perf_counter(); answer = await client.image_manifests(refs)
            times["batch"].append(time.perf_counter() - start)
            assert len(answer) == len(refs)
            start = time.perf_counter(); count = 0
            async for _ in client.iter_image_manifests(refs):
                count += 1
            times["stream"].append(time.perf_counter() - start)
            assert count == len(refs)
    print(json.dumps(times))
asyncio.run(main())
"""

TYPESCRIPT = """
const [source, refsFile, rounds] = process.argv.slice(1);
const { Client } = await import(source + "/typescript/src/index.js");
const refs = JSON.parse((await import("node:fs")).readFileSync(refsFile, "utf8"));
const client = Client.start({ timeout: 600_000 });
await client.imageManifests(refs);
const times = { batch: [], stream: [] };
for (let i = 0; i < Number(rounds); i++) {
  let start = performance.now(); const answer = await client.imageManifests(refs); times.batch.push((performance.now() - start) / 1000);
  if (Object.keys(answer).length !== refs.length) throw new Error("answer short");
  start = performance.now(); let count = 0;
  for await (const item of client.streamImageManifests(refs)) if (item.manifest) count++;
  times.stream.push((performance.now() - start) / 1000);
  if (count !== refs.length) throw new Error("stream short");
}
await client.close();
console.log(JSON.stringify(times));
"""

GO = """package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	ocirpc "github.com/ocirpc/ocirpc/clients/go"
)

func main() {
	var refs []string
	data, _ := os.ReadFile(os.Args[1])
	if err := json.Unmarshal(data, &refs); err != nil {
		panic(err)
	}
	rounds, _ := strconv.Atoi(os.Args[2])
	ctx := context.Background()
	client, err := ocirpc.Start(ocirpc.Options{})
	if err != nil {
		panic(err)
	}
	defer client.Close(ctx)
	if _, err := client.ImageManifests(ctx, refs, ""); err != nil {
		panic(err)
	}
	times := map[string][]float64{"batch": {}, "stream": {}}
	for i := 0; i < rounds; i++ {
		start := time.Now()
		answer, err := client.ImageManifests(ctx, refs, "")
		if err != nil || len(answer) != len(refs) {
			panic(fmt.Sprint("answer short: ", err))
		}
		times["batch"] = append(times["batch"], time.Since(start).Seconds())
		start = time.Now()
		stream := client.StreamImageManifests(ctx, refs, "")
		count := 0
		for item := range stream.C {
			if item.Manifest != nil {
				count++
			}
		}
		if err := stream.Err(); err != nil || count != len(refs) {
			panic(fmt.Sprint("stream short: ", err))
		}
		times["stream"] = append(times["stream"], time.Since(start).Seconds())
	}
	out, _ := json.Marshal(times)
	fmt.Println(string(out))
}
"""


def build_go(clients, work, name):
    """The Go program above built against the Go client in `clients`."""
    directory = os.path.join(work, name)
    os.makedirs(directory)
    with open(os.path.join(directory, "go.mod"), "w") as mod:
        mod.write("module bench\n\ngo 1.19\n\nrequire github.com/ocirpc/ocirpc/clients/go v0.0.0\n\n"
                  f"replace github.com/ocirpc/ocirpc/clients/go => {os.path.join(clients, 'go')}\n")
    with open(os.path.join(directory, "main.go"), "w") as main:
        main.write(GO)
    binary = os.path.join(directory, "bench-go")
    subprocess.run(["go", "build", "-o", binary, "."], cwd=directory, check=True,
                   env={**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off"})
    return binary


def clients(args):
    """Runs the suite: see the module's docstring."""
    sys.path.insert(0, os.path.join(ROOT, "clients", "testing"))
    from fixture_registry import Registry

    trees = [("", os.path.join(ROOT, "clients"))]
    if args.baseline_clients:
        trees.append(("baseline ", os.path.abspath(args.baseline_clients)))
    registry = Registry()
    work = tempfile.mkdtemp(prefix="ocirpc-bench-clients-")
    try:
        refs = []
        for i in range(args.client_manifests):
            registry.push_image("clients/app", f"t{i}", annotations={"i": str(i), "pad": "x" * args.client_padding})
            refs.append(f"{registry.host}/clients/app:t{i}")
        refs_file = os.path.join(work, "refs.json")
        with open(refs_file, "w") as out:
            json.dump(refs, out)
        runners = []
        for label, tree in trees:
            runners.append((f"{label}Python Client", [sys.executable, "-c", PYTHON_SYNC, os.path.join(tree, "python"), refs_file]))
            runners.append((f"{label}Python AsyncClient", [sys.executable, "-c", PYTHON_ASYNC, os.path.join(tree, "python"), refs_file]))
            go = build_go(tree, work, f"go{len(runners)}")
            runners.append((f"{label}Go", [go, refs_file]))
            runners.append((f"{label}TypeScript", ["node", "--input-type=module", "-e", TYPESCRIPT, tree, refs_file]))
        environment = {**os.environ, "OCIRPC_BINARY": os.path.abspath(args.binary)}
        times = {(name, kind): [] for name, _ in runners for kind in ("batch", "stream")}
        for round_number in range(args.rounds):
            # Each round starts one runner later, so that none always goes first.
            shift = round_number % len(runners)
            for name, command in runners[shift:] + runners[:shift]:
                done = subprocess.run([*command, "1"], capture_output=True, text=True, env=environment)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed: {done.stderr[-2000:]}")
                for kind, values in json.loads(done.stdout.strip().splitlines()[-1]).items():
                    times[(name, kind)].extend(values)
        # The answer's size, as the server writes it.
        probe = subprocess.run([os.path.abspath(args.binary), "--log-level", "error", "call", "ec.oci.image_manifests",
                                json.dumps(refs)], capture_output=True, env=environment)
        answer_bytes = len(probe.stdout)
        print(f"one answer of {len(refs):,} manifests, about {answer_bytes / 1e6:.1f} MB as JSON; "
              f"median of {args.rounds} rounds (min-max)")
        for name, _ in runners:
            line = f"  {name:28}"
            for kind in ("batch", "stream"):
                values = times[(name, kind)]
                line += (f"  {kind} {statistics.median(values) * 1000:7.1f} ms "
                         f"({min(values) * 1000:.1f}-{max(values) * 1000:.1f})")
            print(line)
    finally:
        registry.close()
        shutil.rmtree(work, ignore_errors=True)
