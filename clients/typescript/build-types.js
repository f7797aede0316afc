// Generates types/ (the declarations in package.json) from the JSDoc with
// tsc (Debian's node-typescript), without the reference to node.d.ts: that
// shim only stands in for @types/node while checking here; consumers use
// their own Node types. `node build-types.js` rewrites types/.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Type-checks the sources and writes their declarations to `outDir`.
 * @param {string} outDir
 * @returns {{status: number | null, output: string}}
 */
export function buildTypes(outDir) {
  const run = spawnSync("tsc", ["-p", "tsconfig.json", "--outDir", outDir], { cwd: here, encoding: "utf8" });
  if (run.error) return { status: null, output: `tsc could not run (apt-get install node-typescript): ${run.error.message}` };
  if (run.status === 0) {
    for (const file of readdirSync(outDir)) {
      const target = path.join(outDir, file);
      const text = readFileSync(target, "utf8").replace(/^\/\/\/ <reference path="[^"]*node\.d\.ts" \/>\n/m, "");
      writeFileSync(target, text);
    }
  }
  return { status: run.status, output: run.stdout + run.stderr };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { status, output } = buildTypes(path.join(here, "types"));
  process.stdout.write(output);
  process.exit(status ?? 1);
}
