import { test } from "node:test";
import assert from "node:assert/strict";
import { Decoder, encode } from "../src/framing.js";

test("a message cut into many chunks is read once it is whole", () => {
  const message = { jsonrpc: "2.0", id: 7, result: { text: "é".repeat(5000) } };
  const bytes = Buffer.concat([encode(message), encode({ jsonrpc: "2.0", id: 8, result: null })]);
  const decoder = new Decoder();
  const read = [];
  for (let at = 0; at < bytes.length; at += 97) read.push(...decoder.push(bytes.subarray(at, at + 97)));
  assert.deepEqual(read, [message, { jsonrpc: "2.0", id: 8, result: null }]);
});

test("a large message's chunks are copied about once, not once per chunk", () => {
  // Joining each chunk onto those before copied 512 MB to read this 1 MB.
  const bytes = encode({ result: "x".repeat(1 << 20) });
  const decoder = new Decoder();
  const concat = Buffer.concat;
  let copied = 0;
  Buffer.concat = (list, length) => {
    const joined = concat(list, length);
    copied += joined.length;
    return joined;
  };
  try {
    for (let at = 0; at < bytes.length; at += 1024) decoder.push(bytes.subarray(at, at + 1024));
  } finally {
    Buffer.concat = concat;
  }
  assert.ok(copied < 3 * bytes.length, `${copied} bytes copied to read ${bytes.length}`);
});

test("a frame whose body is not JSON is passed over and the next is read", () => {
  const bad = Buffer.from("Content-Length: 5\r\n\r\n{\"cut", "utf8");
  const decoder = new Decoder();
  assert.deepEqual(decoder.push(Buffer.concat([bad, encode({ id: 1 })])), [{ id: 1 }]);
});

test("a header without a Content-Length is an error: nothing after it can be read", () => {
  assert.throws(() => new Decoder().push(Buffer.from("Content-Type: x\r\n\r\n{}")), /bad frame header/);
});
