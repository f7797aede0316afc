// Client for ocirpc: spawns the server and calls the ec.oci.* builtins.
// Promise-based; pass an AbortSignal to cancel a call on the server.
import { spawn } from "node:child_process";
import { Decoder, encode } from "./framing.js";

/**
 * A descriptor; `size` is a BigInt past 2^53 - 1, as every integer read is.
 * @typedef {{mediaType: string, size: number | bigint, digest: string, data: string, urls: string[],
 *   annotations: Record<string, string>, artifactType: string, platform?: Record<string, unknown>}} Descriptor
 * @typedef {{schemaVersion: number, mediaType: string, config: Descriptor, layers: Descriptor[],
 *   annotations: Record<string, string>, subject?: Descriptor}} Manifest
 * @typedef {{schemaVersion: number, mediaType: string, manifests: Descriptor[],
 *   annotations: Record<string, string>, subject?: Descriptor}} Index
 * @typedef {{signal?: AbortSignal, timeout?: number}} CallOptions
 *   `signal` cancels the call on the server; `timeout` (ms) does the same when it passes.
 * @typedef {{binary?: string, args?: string[], env?: Record<string, string | undefined>, timeout?: number}} StartOptions
 * @typedef {{ref: string, manifest?: Manifest, error?: RPCError}} StreamedManifest
 */

/** The contract's error codes (protocol/openrpc.json, components.errors). */
export const Codes = Object.freeze({
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  RequestCancelled: -32800,
  NotFound: -32001,
  AccessDenied: -32002,
  IntegrityFailure: -32003,
  RegistryUnavailable: -32004,
  LimitExceeded: -32005,
  UnsupportedContent: -32006,
});

/**
 * A signal that aborts after `ms` milliseconds without keeping the process alive.
 * @param {number} ms @returns {AbortSignal}
 */
function timeoutSignal(ms) {
  return /** @type {{timeout(ms: number): AbortSignal}} */ (/** @type {unknown} */ (AbortSignal)).timeout(ms);
}

/** An error the server answered with. */
export class RPCError extends Error {
  /** @param {{code: number, message: string, data?: Record<string, unknown>}} error */
  constructor(error) {
    super(`${error.code} ${error.message}`);
    this.name = "RPCError";
    /** @type {number} */
    this.code = error.code;
    /** @type {Record<string, unknown>} */
    this.data = error.data ?? {};
  }
  /** The contract's snake_case reason, e.g. "manifest_unknown". */
  get reason() { return /** @type {string | undefined} */ (this.data.reason); }
  /** The reference the error is about, when there is one. */
  get ref() { return /** @type {string | undefined} */ (this.data.ref); }
  /** Whether the server says the same request may succeed later. */
  get retryable() { return this.data.retryable === true; }
}

/** The server exited, or could not be started, before answering. */
export class ServerDiedError extends Error {
  /** @param {number | null} exitCode @param {string} stderr @param {Error} [cause] */
  constructor(exitCode, stderr, cause) {
    super(cause ? `ocirpc could not be started: ${cause.message}` : `ocirpc exited (status ${exitCode}); last stderr:\n${stderr}`);
    this.name = "ServerDiedError";
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.cause = cause;
  }
}

/**
 * A streamed batch ended without an outcome for each distinct ref it asked
 * for, which the protocol promises. Left out silently, those refs would
 * read as refs that failed.
 */
export class IncompleteBatchError extends Error {
  /** @param {string[]} missing */
  constructor(missing) {
    super(`ec.oci.image_manifests ended without an answer for ${missing.length} ref(s): ${missing.join(", ")}`);
    this.name = "IncompleteBatchError";
    /** The refs without an outcome, sorted. */
    this.missing = missing;
  }
}

/** A running server; any number of calls may be in flight at once. */
export class Client {
  /**
   * Spawns the server. `binary` defaults to $OCIRPC_BINARY, then `ocirpc` on PATH.
   * @param {StartOptions} [options]
   */
  static start(options = {}) {
    return new Client(options);
  }

  /** @param {StartOptions} options */
  constructor(options) {
    const binary = options.binary ?? process.env.OCIRPC_BINARY ?? "ocirpc";
    /** @type {number | undefined} */
    this.timeout = options.timeout;
    this.nextId = 0;
    /** @type {Map<number, (message: any) => void>} */
    this.pending = new Map();
    /** @type {Map<string, (value: any) => void>} */
    this.streams = new Map();
    /** @type {string[]} */
    this.stderr = [];
    /** @type {ServerDiedError | null} */
    this.dead = null;
    /** @type {(code: number | null) => void} */
    let exited = () => {};
    /** @type {Promise<number | null>} */
    this.exited = new Promise((resolve) => { exited = resolve; });
    this.process = spawn(binary, options.args ?? [], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const decoder = new Decoder();
    let unreadable = false;
    this.process.stdout.on("data", (chunk) => {
      if (unreadable) return;
      /** @type {unknown[]} */
      let messages;
      try {
        messages = decoder.push(chunk);
      } catch (error) {
        // A stream that cannot be read further: the server goes, and every
        // call is rejected (on "close") rather than left waiting.
        unreadable = true;
        this.stderr.push(`unreadable output: ${/** @type {Error} */ (error).message}`);
        this.process.kill("SIGKILL");
        return;
      }
      for (const message of messages) this.#dispatch(/** @type {any} */ (message));
    });
    this.process.stderr.on("data", (chunk) => {
      this.stderr.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      this.stderr.splice(0, Math.max(0, this.stderr.length - 40));
    });
    this.process.stdin.on("error", () => {});
    // A binary that is missing or cannot run: every call rejects, nothing throws.
    this.process.on("error", (error) => {
      this.#die(new ServerDiedError(null, this.stderr.join("\n"), error));
      exited(null);
    });
    this.process.on("close", (code) => {
      this.#die(new ServerDiedError(code, this.stderr.join("\n")));
      exited(code);
    });
  }

  /** @param {ServerDiedError} error */
  #die(error) {
    this.dead ??= error;
    for (const answer of this.pending.values()) answer({ died: this.dead });
    this.pending.clear();
  }

  /** @param {any} message */
  #dispatch(message) {
    if (typeof message !== "object" || message === null) return;
    if (message.method === "$/progress") {
      this.streams.get(String(message.params?.token))?.(message.params?.value);
      return;
    }
    const answer = this.pending.get(message.id);
    if (answer) {
      this.pending.delete(message.id);
      answer(message);
    }
  }

  /** @param {unknown} message */
  #write(message) {
    if (!this.dead) this.process.stdin.write(encode(message));
  }

  /** @param {number} id */
  #cancel(id) {
    if (this.pending.delete(id)) this.#write({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id } });
  }

  /**
   * Sends a request; its id, and a promise of its result.
   * @param {string} method @param {unknown} params @param {CallOptions} options
   * @returns {{id: number, result: Promise<any>}}
   */
  #start(method, params, options) {
    const id = ++this.nextId;
    if (this.dead) return { id, result: Promise.reject(this.dead) };
    const timeout = options.timeout ?? this.timeout;
    const signal = options.signal ?? (timeout ? timeoutSignal(timeout) : undefined);
    const result = new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#cancel(id);
        reject(signal?.reason ?? new Error("aborted"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, (message) => {
        signal?.removeEventListener("abort", onAbort);
        if (message.died) reject(message.died);
        else if (message.error) reject(new RPCError(message.error));
        else resolve(message.result);
      });
      this.#write(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params });
    });
    return { id, result };
  }

  /**
   * Any method: resolves to the result, rejects with RPCError, ServerDiedError,
   * or the signal's reason (the request is then cancelled on the server).
   * @param {string} method @param {unknown} [params] @param {CallOptions} [options]
   * @returns {Promise<any>}
   */
  call(method, params, options = {}) {
    return this.#start(method, params, options).result;
  }

  /**
   * The blob `ref` names (by digest), decompressed, as text; `encoding: "base64"`
   * for bytes that are not UTF-8.
   * @param {string} ref @param {CallOptions & {encoding?: "utf8" | "base64"}} [o] @returns {Promise<string>}
   */
  blob(ref, o = {}) { return this.call("ec.oci.blob", o.encoding ? { ref, encoding: o.encoding } : [ref], o); }
  /**
   * The blob parsed as JSON or YAML.
   * @param {string} ref @param {CallOptions} [o] @returns {Promise<unknown>}
   */
  parsedBlob(ref, o) { return this.call("ec.oci.parsed_blob", [ref], o); }
  /**
   * The files of the tar blob named exactly as `paths`, parsed.
   * @param {string} ref @param {string[]} paths @param {CallOptions} [o] @returns {Promise<Record<string, unknown>>}
   */
  blobFiles(ref, paths, o) { return this.call("ec.oci.blob_files", [ref, paths], o); }
  /**
   * The descriptor of what `ref` names.
   * @param {string} ref @param {CallOptions} [o] @returns {Promise<Descriptor>}
   */
  descriptor(ref, o) { return this.call("ec.oci.descriptor", [ref], o); }
  /**
   * The image manifest; an index resolves to `platform` ("os/arch[/variant]").
   * @param {string} ref @param {CallOptions & {platform?: string}} [o] @returns {Promise<Manifest>}
   */
  imageManifest(ref, o = {}) {
    return this.call("ec.oci.image_manifest", o.platform ? { ref, platform: o.platform } : [ref], o);
  }
  /**
   * The manifests of `refs` (ref -> manifest); refs that fail are left out,
   * as the original leaves them out, whatever the failure (a limit of the
   * server's too): `streamImageManifests` tells each ref's.
   * @param {string[]} refs @param {CallOptions & {platform?: string}} [o] @returns {Promise<Record<string, Manifest>>}
   */
  imageManifests(refs, o = {}) {
    return this.call("ec.oci.image_manifests", o.platform ? { refs, platform: o.platform } : [refs], o);
  }
  /**
   * The files under the directories `paths` of the image's flattened filesystem, parsed.
   * @param {string} ref @param {string[]} paths @param {CallOptions} [o] @returns {Promise<Record<string, unknown>>}
   */
  imageFiles(ref, paths, o) { return this.call("ec.oci.image_files", [ref, paths], o); }
  /**
   * The image index `ref` names.
   * @param {string} ref @param {CallOptions} [o] @returns {Promise<Index>}
   */
  imageIndex(ref, o) { return this.call("ec.oci.image_index", [ref], o); }
  /**
   * The cosign tags (.sig, .att, .sbom) that exist.
   * @param {string} ref @param {CallOptions} [o] @returns {Promise<string[]>}
   */
  imageTagRefs(ref, o) { return this.call("ec.oci.image_tag_refs", [ref], o); }
  /**
   * The manifests referring to the image.
   * @param {string} ref @param {CallOptions} [o] @returns {Promise<object[]>}
   */
  imageReferrers(ref, o) { return this.call("ec.oci.image_referrers", [ref], o); }
  /**
   * The server's counters (server.stats).
   * @param {CallOptions} [o] @returns {Promise<Record<string, any>>}
   */
  stats(o) { return this.call("server.stats", undefined, o); }
  /**
   * Drops the server's in-memory caches (server.clearCache).
   * @param {CallOptions} [o] @returns {Promise<unknown>}
   */
  clearCache(o) { return this.call("server.clearCache", undefined, o); }

  /**
   * Yields `{ref, manifest}` or `{ref, error}` for each distinct ref as soon
   * as the server finishes it. Leaving the loop early (break, return, throw)
   * cancels the rest of the batch on the server.
   * @param {string[]} refs @param {CallOptions & {platform?: string}} [o]
   * @returns {AsyncGenerator<StreamedManifest>}
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
    const params = o.platform ? { refs, partialResultToken: token, platform: o.platform } : { refs, partialResultToken: token };
    const { id, result } = this.#start("ec.oci.image_manifests", params, o);
    const call = result
      .catch((error) => { failure = error; })
      .finally(() => { finished = true; wake?.(); });
    let complete = false;
    const unanswered = new Set(refs);
    try {
      for (;;) {
        while (queue.length) {
          const value = queue.shift();
          unanswered.delete(value.ref);
          yield value.error ? { ref: value.ref, error: new RPCError(value.error) } : { ref: value.ref, manifest: value.manifest };
        }
        if (finished) break;
        await new Promise((resolve) => { wake = () => resolve(undefined); });
        wake = null;
      }
      await call;
      complete = true;
      if (failure) throw failure;
      if (unanswered.size) throw new IncompleteBatchError([...unanswered].sort());
    } finally {
      this.streams.delete(token);
      if (!complete) this.#cancel(id);
    }
  }

  /**
   * shutdown, exit, and wait for the process; past `timeout` (ms) it is killed.
   * @param {{timeout?: number}} [options]
   */
  async close(options = {}) {
    if (!this.dead) {
      try {
        await this.call("shutdown", undefined, { timeout: options.timeout ?? 10_000 });
        this.#write({ jsonrpc: "2.0", method: "exit" });
      } catch {
        // already gone, or not answering: killed below if it does not exit
      }
      this.process.stdin.end();
    }
    const timer = setTimeout(() => this.process.kill("SIGKILL"), options.timeout ?? 10_000);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
