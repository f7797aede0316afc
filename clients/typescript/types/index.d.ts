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
export const Codes: Readonly<{
    ParseError: -32700;
    InvalidRequest: -32600;
    MethodNotFound: -32601;
    InvalidParams: -32602;
    InternalError: -32603;
    RequestCancelled: -32800;
    NotFound: -32001;
    AccessDenied: -32002;
    IntegrityFailure: -32003;
    RegistryUnavailable: -32004;
    LimitExceeded: -32005;
    UnsupportedContent: -32006;
}>;
/** An error the server answered with. */
export class RPCError extends Error {
    /** @param {{code: number, message: string, data?: Record<string, unknown>}} error */
    constructor(error: {
        code: number;
        message: string;
        data?: Record<string, unknown>;
    });
    /** @type {number} */
    code: number;
    /** @type {Record<string, unknown>} */
    data: Record<string, unknown>;
    /** The contract's snake_case reason, e.g. "manifest_unknown". */
    get reason(): string | undefined;
    /** The reference the error is about, when there is one. */
    get ref(): string | undefined;
    /** Whether the server says the same request may succeed later. */
    get retryable(): boolean;
}
/** The server exited, or could not be started, before answering. */
export class ServerDiedError extends Error {
    /** @param {number | null} exitCode @param {string} stderr @param {Error} [cause] */
    constructor(exitCode: number | null, stderr: string, cause?: Error | undefined);
    exitCode: number | null;
    stderr: string;
    cause: Error | undefined;
}
/**
 * A streamed batch ended without an outcome for each distinct ref it asked
 * for, which the protocol promises. Left out silently, those refs would
 * read as refs that failed.
 */
export class IncompleteBatchError extends Error {
    /** @param {string[]} missing */
    constructor(missing: string[]);
    /** The refs without an outcome, sorted. */
    missing: string[];
}
/** A running server; any number of calls may be in flight at once. */
export class Client {
    /**
     * Spawns the server. `binary` defaults to $OCIRPC_BINARY, then `ocirpc` on PATH.
     * @param {StartOptions} [options]
     */
    static start(options?: StartOptions | undefined): Client;
    /** @param {StartOptions} options */
    constructor(options: StartOptions);
    /** @type {number | undefined} */
    timeout: number | undefined;
    nextId: number;
    /** @type {Map<number, (message: any) => void>} */
    pending: Map<number, (message: any) => void>;
    /** @type {Map<string, (value: any) => void>} */
    streams: Map<string, (value: any) => void>;
    /** @type {string[]} */
    stderr: string[];
    /** @type {ServerDiedError | null} */
    dead: ServerDiedError | null;
    /** @type {Promise<number | null>} */
    exited: Promise<number | null>;
    process: import("node:child_process").ChildProcess;
    /**
     * Any method: resolves to the result, rejects with RPCError, ServerDiedError,
     * or the signal's reason (the request is then cancelled on the server).
     * @param {string} method @param {unknown} [params] @param {CallOptions} [options]
     * @returns {Promise<any>}
     */
    call(method: string, params?: unknown, options?: CallOptions | undefined): Promise<any>;
    /**
     * The blob `ref` names (by digest), decompressed, as text; `encoding: "base64"`
     * for bytes that are not UTF-8.
     * @param {string} ref @param {CallOptions & {encoding?: "utf8" | "base64"}} [o] @returns {Promise<string>}
     */
    blob(ref: string, o?: (CallOptions & {
        encoding?: "utf8" | "base64" | undefined;
    }) | undefined): Promise<string>;
    /**
     * The blob parsed as JSON or YAML.
     * @param {string} ref @param {CallOptions} [o] @returns {Promise<unknown>}
     */
    parsedBlob(ref: string, o?: CallOptions | undefined): Promise<unknown>;
    /**
     * The files of the tar blob named exactly as `paths`, parsed.
     * @param {string} ref @param {string[]} paths @param {CallOptions} [o] @returns {Promise<Record<string, unknown>>}
     */
    blobFiles(ref: string, paths: string[], o?: CallOptions | undefined): Promise<Record<string, unknown>>;
    /**
     * The descriptor of what `ref` names.
     * @param {string} ref @param {CallOptions} [o] @returns {Promise<Descriptor>}
     */
    descriptor(ref: string, o?: CallOptions | undefined): Promise<Descriptor>;
    /**
     * The image manifest; an index resolves to `platform` ("os/arch[/variant]").
     * @param {string} ref @param {CallOptions & {platform?: string}} [o] @returns {Promise<Manifest>}
     */
    imageManifest(ref: string, o?: (CallOptions & {
        platform?: string | undefined;
    }) | undefined): Promise<Manifest>;
    /**
     * The manifests of `refs` (ref -> manifest); refs that fail are left out,
     * as the original leaves them out, whatever the failure (a limit of the
     * server's too): `streamImageManifests` tells each ref's.
     * @param {string[]} refs @param {CallOptions & {platform?: string}} [o] @returns {Promise<Record<string, Manifest>>}
     */
    imageManifests(refs: string[], o?: (CallOptions & {
        platform?: string | undefined;
    }) | undefined): Promise<Record<string, Manifest>>;
    /**
     * The files under the directories `paths` of the image's flattened filesystem, parsed.
     * @param {string} ref @param {string[]} paths @param {CallOptions} [o] @returns {Promise<Record<string, unknown>>}
     */
    imageFiles(ref: string, paths: string[], o?: CallOptions | undefined): Promise<Record<string, unknown>>;
    /**
     * The image index `ref` names.
     * @param {string} ref @param {CallOptions} [o] @returns {Promise<Index>}
     */
    imageIndex(ref: string, o?: CallOptions | undefined): Promise<Index>;
    /**
     * The cosign tags (.sig, .att, .sbom) that exist.
     * @param {string} ref @param {CallOptions} [o] @returns {Promise<string[]>}
     */
    imageTagRefs(ref: string, o?: CallOptions | undefined): Promise<string[]>;
    /**
     * The manifests referring to the image.
     * @param {string} ref @param {CallOptions} [o] @returns {Promise<object[]>}
     */
    imageReferrers(ref: string, o?: CallOptions | undefined): Promise<object[]>;
    /**
     * The server's counters (server.stats).
     * @param {CallOptions} [o] @returns {Promise<Record<string, any>>}
     */
    stats(o?: CallOptions | undefined): Promise<Record<string, any>>;
    /**
     * Drops the server's in-memory caches (server.clearCache).
     * @param {CallOptions} [o] @returns {Promise<unknown>}
     */
    clearCache(o?: CallOptions | undefined): Promise<unknown>;
    /**
     * Yields `{ref, manifest}` or `{ref, error}` for each distinct ref as soon
     * as the server finishes it. Leaving the loop early (break, return, throw)
     * cancels the rest of the batch on the server.
     * @param {string[]} refs @param {CallOptions & {platform?: string}} [o]
     * @returns {AsyncGenerator<StreamedManifest>}
     */
    streamImageManifests(refs: string[], o?: (CallOptions & {
        platform?: string | undefined;
    }) | undefined): AsyncGenerator<StreamedManifest>;
    /**
     * shutdown, exit, and wait for the process; past `timeout` (ms) it is killed.
     * @param {{timeout?: number}} [options]
     */
    close(options?: {
        timeout?: number | undefined;
    } | undefined): Promise<void>;
    #private;
}
/**
 * A descriptor; `size` is a BigInt past 2^53 - 1, as every integer read is.
 */
export type Descriptor = {
    mediaType: string;
    size: number | bigint;
    digest: string;
    data: string;
    urls: string[];
    annotations: Record<string, string>;
    artifactType: string;
    platform?: Record<string, unknown>;
};
/**
 * A descriptor; `size` is a BigInt past 2^53 - 1, as every integer read is.
 */
export type Manifest = {
    schemaVersion: number;
    mediaType: string;
    config: Descriptor;
    layers: Descriptor[];
    annotations: Record<string, string>;
    subject?: Descriptor;
};
/**
 * A descriptor; `size` is a BigInt past 2^53 - 1, as every integer read is.
 */
export type Index = {
    schemaVersion: number;
    mediaType: string;
    manifests: Descriptor[];
    annotations: Record<string, string>;
    subject?: Descriptor;
};
/**
 * `signal` cancels the call on the server; `timeout` (ms) does the same when it passes.
 */
export type CallOptions = {
    signal?: AbortSignal;
    timeout?: number;
};
/**
 * A descriptor; `size` is a BigInt past 2^53 - 1, as every integer read is.
 */
export type StartOptions = {
    binary?: string;
    args?: string[];
    env?: Record<string, string | undefined>;
    timeout?: number;
};
/**
 * A descriptor; `size` is a BigInt past 2^53 - 1, as every integer read is.
 */
export type StreamedManifest = {
    ref: string;
    manifest?: Manifest;
    error?: RPCError;
};
