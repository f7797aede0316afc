// Client for ocirpc: spawns the server and calls the ec.oci.* builtins.
// Promise-based; pass an AbortSignal to cancel a call on the server.
import { spawn } from "node:child_process";
import { Decoder, encode } from "./framing.js";

/**
 * @typedef {{mediaType: string, size: number, digest: string, data: string, urls: string[],
 *   annotations: Record<string, string>, artifactType: string, platform?: Record<string, unknown>}} Descriptor
 * @typedef {{schemaVersion: number, mediaType: string, config: Descriptor, layers: Descriptor[],
 *   annotations: Record<string, string>, subject?: Descriptor}} Manifest
 * @typedef {{signal?: AbortSignal, timeout?: number}} CallOptions
 */

/** An error the server answered with. */
export class RPCError extends Error {
  /** @param {{code: number, message: string, data?: Record<string, unknown>}} error */
  constructor(error) {
    super(`${error.code} ${error.message}`);
    this.code = error.code;
    this.data = error.data ?? {};
  }
  /** The contract's snake_case reason, e.g. "manifest_unknown". */
  get reason() { return /** @type {string | undefined} */ (this.data.reason); }
  /** The reference the error is about, when there is one. */
  get ref() { return /** @type {string | undefined} */ (this.data.ref); }
}

/** The server exited before answering. */
export class ServerDiedError extends Error {
  /** @param {number | null} exitCode @param {string} stderr */
  constructor(exitCode, stderr) {
    super(`ocirpc exited (status ${exitCode}); last stderr:\n${stderr}`);
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export class Client {
  /**
   * Spawns the server. `binary` defaults to $OCIRPC_BINARY, then `ocirpc` on PATH.
   * @param {{binary?: string, args?: string[], env?: NodeJS.ProcessEnv, timeout?: number}} [options]
   */
  static start(options = {}) {
    return new Client(options);
  }

  /** @param {{binary?: string, args?: string[], env?: NodeJS.ProcessEnv, timeout?: number}} options */
  constructor(options) {
    const binary = options.binary ?? process.env.OCIRPC_BINARY ?? "ocirpc";
    this.timeout = options.timeout;
    this.process = spawn(binary, options.args ?? [], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    this.nextId = 0;
    /** @type {Map<number, {resolve: (m: any) => void, stream?: (v: any) => void}>} */
    this.pending = new Map();
    /** @type {string[]} */
    this.stderr = [];
    /** @type {ServerDiedError | null} */
    this.dead = null;
    const decoder = new Decoder();
    this.process.stdout.on("data", (chunk) => {
      for (const message of decoder.push(chunk)) this.#dispatch(/** @type {any} */ (message));
    });
    this.process.stderr.on("data", (chunk) => {
      this.stderr.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      this.stderr.splice(0, Math.max(0, this.stderr.length - 40));
    });
    this.process.stdin.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.process.on("close", (code) => {
        this.dead = new ServerDiedError(code, this.stderr.join("\n"));
        for (const { resolve: answer } of this.pending.values()) answer({ died: this.dead });
        this.pending.clear();
        resolve(code);
      });
    });
    /** @type {Map<string, (value: any) => void>} */
    this.streams = new Map();
  }

  /** @param {any} message */
  #dispatch(message) {
    if (message.method === "$/progress") {
      this.streams.get(String(message.params?.token))?.(message.params?.value);
      return;
    }
    const entry = this.pending.get(message.id);
    if (entry) {
      this.pending.delete(message.id);
      entry.resolve(message);
    }
  }

  /** @param {unknown} message */
  #write(message) {
    if (!this.dead) this.process.stdin.write(encode(message));
  }

  /**
   * Any method: resolves to the result, rejects with RPCError, ServerDiedError,
   * or the signal's reason (the request is then cancelled on the server).
   * @param {string} method @param {unknown} [params] @param {CallOptions} [options]
   */
  call(method, params, options = {}) {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.nextId;
    const signal = options.signal ?? (options.timeout ?? this.timeout ? AbortSignal.timeout(options.timeout ?? this.timeout) : undefined);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(id);
        this.#write({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id } });
        reject(signal?.reason ?? new Error("aborted"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, {
        resolve: (message) => {
          signal?.removeEventListener("abort", onAbort);
          if (message.died) reject(message.died);
          else if (message.error) reject(new RPCError(message.error));
          else resolve(message.result);
        },
      });
      this.#write(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params });
    });
  }

  /** @param {string} ref @param {CallOptions} [o] @returns {Promise<string>} */
  blob(ref, o) { return this.call("ec.oci.blob", [ref], o); }
  /** @param {string} ref @param {CallOptions} [o] @returns {Promise<unknown>} */
  parsedBlob(ref, o) { return this.call("ec.oci.parsed_blob", [ref], o); }
  /** @param {string} ref @param {string[]} paths @param {CallOptions} [o] @returns {Promise<Record<string, unknown>>} */
  blobFiles(ref, paths, o) { return this.call("ec.oci.blob_files", [ref, paths], o); }
  /** @param {string} ref @param {CallOptions} [o] @returns {Promise<Descriptor>} */
  descriptor(ref, o) { return this.call("ec.oci.descriptor", [ref], o); }
  /** @param {string} ref @param {CallOptions & {platform?: string}} [o] @returns {Promise<Manifest>} */
  imageManifest(ref, o = {}) {
    return this.call("ec.oci.image_manifest", o.platform ? { ref, platform: o.platform } : [ref], o);
  }
  /** @param {string[]} refs @param {CallOptions} [o] @returns {Promise<Record<string, Manifest>>} */
  imageManifests(refs, o) { return this.call("ec.oci.image_manifests", [refs], o); }
  /** @param {string} ref @param {string[]} paths @param {CallOptions} [o] @returns {Promise<Record<string, unknown>>} */
  imageFiles(ref, paths, o) { return this.call("ec.oci.image_files", [ref, paths], o); }
  /** @param {string} ref @param {CallOptions} [o] */
  imageIndex(ref, o) { return this.call("ec.oci.image_index", [ref], o); }
  /** @param {string} ref @param {CallOptions} [o] @returns {Promise<string[]>} */
  imageTagRefs(ref, o) { return this.call("ec.oci.image_tag_refs", [ref], o); }
  /** @param {string} ref @param {CallOptions} [o] @returns {Promise<object[]>} */
  imageReferrers(ref, o) { return this.call("ec.oci.image_referrers", [ref], o); }
  /** @returns {Promise<Record<string, any>>} */
  stats() { return this.call("server.stats"); }

  /**
   * Yields `{ref, manifest}` or `{ref, error}` for each distinct ref as soon
   * as the server finishes it.
   * @param {string[]} refs @param {CallOptions} [o]
   * @returns {AsyncGenerator<{ref: string, manifest?: Manifest, error?: RPCError}>}
   */
  async *streamImageManifests(refs, o = {}) {
    const token = `js-${++this.nextId}`;
    /** @type {any[]} */
    const queue = [];
    /** @type {(() => void) | null} */
    let wake = null;
    this.streams.set(token, (value) => { queue.push(value); wake?.(); });
    let finished = false;
    /** @type {unknown} */
    let failure = null;
    const call = this.call("ec.oci.image_manifests", { refs, partialResultToken: token }, o)
      .catch((error) => { failure = error; })
      .finally(() => { finished = true; wake?.(); });
    try {
      for (;;) {
        while (queue.length) {
          const value = queue.shift();
          yield value.error ? { ref: value.ref, error: new RPCError(value.error) } : { ref: value.ref, manifest: value.manifest };
        }
        if (finished) break;
        await new Promise((resolve) => { wake = () => resolve(undefined); });
        wake = null;
      }
      await call;
      if (failure) throw failure;
    } finally {
      this.streams.delete(token);
    }
  }

  /** shutdown, exit, and wait for the process. */
  async close() {
    if (!this.dead) {
      try {
        await this.call("shutdown");
        this.#write({ jsonrpc: "2.0", method: "exit" });
      } catch {
        // already gone
      }
      this.process.stdin.end();
    }
    await this.exited;
  }
}
