import { test } from "node:test";
import assert from "node:assert/strict";
import { parseJSON } from "../src/json.js";

test("an integer past 2^53 is read exactly, as a BigInt", () => {
  // JSON.parse gives 12345678901234567000 and -9007199254740992.
  assert.deepEqual(parseJSON('{"n": 12345678901234567890, "m": [-9007199254740993]}'), {
    n: 12345678901234567890n,
    m: [-9007199254740993n],
  });
  assert.equal(parseJSON("18446744073709551615"), 18446744073709551615n);
});

test("safe integers, fractions and exponents stay numbers", () => {
  assert.deepEqual(parseJSON('[9007199254740991, -9007199254740991, 1.2345678901234567890, 1e300, 12345678901234567e2]'), [
    9007199254740991, -9007199254740991, 1.2345678901234567, 1e300, 12345678901234567e2,
  ]);
});

test("digits inside strings are text, whatever they look like", () => {
  const text = '{"a": "x:12345678901234567890", "b\\":": ["\\\\", 12345678901234567890, "\\"1234567890123456789"]}';
  assert.deepEqual(parseJSON(text), {
    a: "x:12345678901234567890",
    'b":': ["\\", 12345678901234567890n, '"1234567890123456789'],
  });
});

test("a string that starts with the mark the reader uses is read as written", () => {
  // A long integer travels through JSON.parse as a string starting with
  // U+0001; a string of the text that starts with it is not taken for one.
  const text = '{"\\u0001k": "\\u0001123", "s": ["\\u0001\\u0001x", "\\u0001"], "n": 12345678901234567890}';
  assert.deepEqual(parseJSON(text), {
    "\u0001k": "\u0001123",
    s: ["\u0001\u0001x", "\u0001"],
    n: 12345678901234567890n,
  });
});

test("text that is not JSON throws as JSON.parse throws", () => {
  assert.throws(() => parseJSON('{"n": 12345678901234567890,}'), SyntaxError);
  assert.throws(() => parseJSON('{"n": 12345678901234567890'), SyntaxError);
  assert.throws(() => parseJSON('["\u0001", 12345678901234567890]'), SyntaxError);
});
