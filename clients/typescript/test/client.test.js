import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client, Codes, IncompleteBatchError, RPCError, ServerDiedError } from "../src/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
process.env.OCIRPC_BINARY ??= path.join(root, ".build", "release", "ocirpc");

/** @type {Record<string, string>} */
let fixtures;
let registry;

before(async () => {
  registry = spawn("python3", [path.join(root, "clients", "testing", "fixture_registry.py")], { stdio: ["pipe", "pipe", "inherit"] });
  const [line] = await once(registry.stdout, "data");
  fixtures = JSON.parse(line.toString().split("\n")[0]);
});

after(async () => {
  registry.stdin.end();
  await once(registry, "close");
});

test("image_manifest over Content-Length framing", async () => {
  const client = Client.start();
  const manifest = await client.imageManifest(fixtures.good);
  assert.equal(manifest.schemaVersion, 2);
  assert.deepEqual(manifest.annotations, { v: "1" });
  assert.equal(manifest.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
  await client.close();
});

test("errors carry code, reason and ref", async () => {
  const client = Client.start();
  await assert.rejects(client.descriptor(fixtures.missing), (error) => {
    assert.ok(error instanceof RPCError);
    assert.equal(error.code, -32001);
    assert.equal(error.reason, "manifest_unknown");
    assert.equal(error.ref, fixtures.missing);
    return true;
  });
  await client.close();
});

test("the streamed batch yields each distinct ref once", async () => {
  const client = Client.start();
  const refs = [fixtures.good, fixtures.bad, fixtures.missing, fixtures.good];
  const seen = new Map();
  for await (const item of client.streamImageManifests(refs)) {
    assert.ok(!seen.has(item.ref), `${item.ref} twice`);
    seen.set(item.ref, item);
  }
  assert.equal(seen.size, 3);
  assert.equal(seen.get(fixtures.bad).manifest.annotations.v, "2");
  assert.equal(seen.get(fixtures.missing).error.code, -32001);
  assert.deepEqual(Object.keys(await client.imageManifests(refs)).sort(), [fixtures.good, fixtures.bad].sort());
  await client.close();
});

test("aborting a call cancels it on the server", async () => {
  const silent = createServer(() => {});
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  const hung = `127.0.0.1:${silent.address().port}/never/answers:v1`;
  const client = Client.start();
  const controller = new AbortController();
  const call = client.imageManifest(hung, { signal: controller.signal });
  assert.ok(await inFlightReaches(client, 1));
  controller.abort();
  await assert.rejects(call);
  assert.ok(await inFlightReaches(client, 0));
  await client.close();
  silent.close();
});

/** A listener that never answers: requests to it hang until cancelled. */
async function silentRegistry() {
  const silent = createServer(() => {});
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  return { silent, ref: `127.0.0.1:${silent.address().port}/never/answers:v1` };
}

/**
 * Whether the server's count of requests in flight comes to `count` within
 * 10 s: cancelling takes a moment, longer on a loaded machine.
 */
async function inFlightReaches(client, count) {
  const deadline = Date.now() + 10_000;
  while ((await client.stats()).inFlight !== count) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const inFlightDropsToZero = (client) => inFlightReaches(client, 0);

test("breaking out of the stream cancels the batch on the server", async () => {
  const { silent, ref } = await silentRegistry();
  const client = Client.start();
  for await (const item of client.streamImageManifests([fixtures.good, ref])) {
    assert.equal(item.ref, fixtures.good);
    break;
  }
  assert.ok(await inFlightDropsToZero(client));
  await client.close();
  silent.close();
});

test("platform on batches, an encoding for blobs, clearCache", async () => {
  const client = Client.start();
  const all = await client.imageManifests([fixtures.good], { platform: "linux/amd64" });
  assert.equal(all[fixtures.good].annotations.v, "1");
  const streamed = [];
  for await (const item of client.streamImageManifests([fixtures.good], { platform: "linux/amd64" })) streamed.push(item);
  assert.equal(streamed.length, 1);
  assert.equal(await client.blob(fixtures.jsonBlob, { encoding: "base64" }), "eyJuIjogMTIzNDU2Nzg5MDEyMzQ1Njc4OTB9");
  // Exact, as the Python and Go clients read it (JSON.parse gave 12345678901234567000).
  assert.deepEqual(await client.parsedBlob(fixtures.jsonBlob), { n: 12345678901234567890n });
  assert.ok((await client.stats()).cacheBytes.used > 0);
  await client.clearCache();
  assert.equal((await client.stats()).cacheBytes.used, 0);
  await client.close();
});

test("a missing binary rejects the pending and the next calls, and crashes nothing", async () => {
  const client = Client.start({ binary: "/nonexistent/ocirpc" });
  const pending = client.stats();
  await assert.rejects(pending, (error) => {
    assert.ok(error instanceof ServerDiedError);
    assert.match(error.message, /could not be started/);
    return true;
  });
  await assert.rejects(client.imageManifest(fixtures.good), ServerDiedError);
  await client.close();
});

test("errors carry retryable, and Codes name them", async () => {
  const client = Client.start();
  await assert.rejects(client.imageManifest(fixtures.missing), (error) => {
    assert.equal(error.code, Codes.NotFound);
    assert.equal(error.retryable, false);
    return true;
  });
  await client.close();
});

test("a server that dies rejects with its stderr", async () => {
  const client = Client.start({ args: ["--tag-ttl", "forever"] });
  await assert.rejects(client.stats(), (error) => {
    assert.ok(error instanceof ServerDiedError);
    assert.equal(error.exitCode, 2);
    assert.match(error.stderr, /--tag-ttl/);
    return true;
  });
});

/**
 * A stand-in for a server gone wrong: a Node script that reads the first
 * request, then writes `frames` (strings, as they are) and lives on.
 * @param {string[]} frames
 */
function standInServer(frames) {
  const directory = mkdtempSync(path.join(tmpdir(), "ocirpc-stand-in-"));
  const script = path.join(directory, "server.mjs");
  writeFileSync(script, `process.stdin.once("data", () => {
  for (const frame of ${JSON.stringify(frames)}) process.stdout.write(frame);
  setTimeout(() => {}, 60_000);
});
`);
  return { client: Client.start({ binary: process.execPath, args: [script] }), remove: () => rmSync(directory, { recursive: true }) };
}

test("a batch that ends without a ref rejects rather than leave it out", async () => {
  // Left out silently, the ref would read as one that failed.
  const directory = mkdtempSync(path.join(tmpdir(), "ocirpc-stand-in-"));
  const script = path.join(directory, "server.mjs");
  writeFileSync(script, `let input = "";
const send = (message) => {
  const body = JSON.stringify(message);
  process.stdout.write("Content-Length: " + Buffer.byteLength(body) + "\\r\\n\\r\\n" + body);
};
process.stdin.on("data", (chunk) => {
  input += chunk;
  const at = input.indexOf("\\r\\n\\r\\n");
  const length = Number(/Content-Length: (\\d+)/i.exec(input)?.[1]);
  if (at < 0 || Buffer.byteLength(input.slice(at + 4)) < length) return;
  const request = JSON.parse(input.slice(at + 4, at + 4 + length));
  input = "";
  send({ jsonrpc: "2.0", method: "$/progress", params: { token: request.params.partialResultToken, value: { ref: "a", manifest: {} } } });
  send({ jsonrpc: "2.0", id: request.id, result: {} });
  setTimeout(() => {}, 60_000);
});
`);
  const client = Client.start({ binary: process.execPath, args: [script] });
  const seen = [];
  await assert.rejects(async () => {
    for await (const item of client.streamImageManifests(["a", "b", "a"], { timeout: 10_000 })) seen.push(item.ref);
  }, (error) => {
    assert.ok(error instanceof IncompleteBatchError);
    assert.deepEqual(error.missing, ["b"]);
    return true;
  });
  assert.deepEqual(seen, ["a"]);
  await client.close({ timeout: 1_000 });
  rmSync(directory, { recursive: true });
});

/** @param {string} body */
const frame = (body) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

test("frames that are not JSON, or not a message, are passed over and the answer after them read", async () => {
  const { client, remove } = standInServer([frame('{"cut'), frame("null"), frame('{"jsonrpc":"2.0","id":1,"result":{"ok":true}}')]);
  assert.deepEqual(await client.stats({ timeout: 10_000 }), { ok: true });
  await client.close({ timeout: 1_000 });
  remove();
});

test("output that cannot be read further stops the server and rejects its calls, and crashes nothing", async () => {
  const { client, remove } = standInServer(["Content-Type: text/plain\r\n\r\n{}"]);
  await assert.rejects(client.stats({ timeout: 10_000 }), (error) => {
    assert.ok(error instanceof ServerDiedError);
    assert.match(error.stderr, /bad frame header/);
    return true;
  });
  await client.close({ timeout: 1_000 });
  remove();
});
