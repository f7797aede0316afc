// The client against the contract and its declarations: every method and
// parameter of protocol/openrpc.json is exposed, the declarations in types/
// are what tsc generates from the JSDoc today, and the JSDoc type-checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Client, Codes } from "../src/index.js";
import { buildTypes } from "../build-types.js";

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const contract = JSON.parse(readFileSync(path.join(here, "..", "..", "protocol", "openrpc.json"), "utf8"));
// Protocol plumbing the client drives itself, not methods for callers.
const plumbing = new Set(["initialize", "shutdown", "exit", "rpc.discover", "$/cancelRequest", "$/progress"]);

/** ec.oci.image_manifest -> imageManifest, server.clearCache -> clearCache */
const jsName = (method) => method.split(".").pop().replace(/_(.)/g, (_, c) => c.toUpperCase());

/** The parameter list of `name` in the declarations (balanced parentheses). */
function declaredParams(declarations, name) {
  const start = declarations.indexOf(`\n    ${name}(`);
  if (start < 0) return null;
  let depth = 0;
  for (let i = declarations.indexOf("(", start); i < declarations.length; i++) {
    if (declarations[i] === "(") depth++;
    if (declarations[i] === ")" && --depth === 0) return declarations.slice(start, i + 1);
  }
  return null;
}

test("every method and parameter of the contract is exposed and declared", () => {
  const declarations = readFileSync(path.join(here, "types", "index.d.ts"), "utf8");
  const methods = contract.methods.filter((m) => !plumbing.has(m.name));
  assert.ok(methods.length >= 12);
  for (const method of methods) {
    const name = jsName(method.name);
    assert.equal(typeof Client.prototype[name], "function", `Client.${name} is missing`);
    const params = declaredParams(declarations, name);
    assert.ok(params, `Client.${name} is not declared`);
    for (const param of method.params ?? []) {
      if (param.name === "partialResultToken") {
        const stream = `stream${name[0].toUpperCase()}${name.slice(1)}`;
        assert.equal(typeof Client.prototype[stream], "function", `${method.name}: no ${stream}`);
        continue;
      }
      assert.match(params, new RegExp(`\\b${param.name}\\b`), `${method.name}: ${name} lacks ${param.name}`);
    }
  }
});

test("every error code of the contract has a constant", () => {
  const codes = Object.values(contract.components.errors).map((e) => e.code).sort();
  assert.deepEqual(Object.values(Codes).sort(), codes);
});

test("the declarations are generated from the JSDoc, and it type-checks", () => {
  const out = mkdtempSync(path.join(tmpdir(), "ocirpc-types-"));
  try {
    const { status, output } = buildTypes(out);
    assert.equal(status, 0, output);
    for (const file of readdirSync(out)) {
      assert.equal(
        readFileSync(path.join(out, file), "utf8"),
        readFileSync(path.join(here, "types", file), "utf8"),
        `types/${file} is stale: run node build-types.js`,
      );
    }
    assert.deepEqual(readdirSync(out).sort(), readdirSync(path.join(here, "types")).sort());
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
