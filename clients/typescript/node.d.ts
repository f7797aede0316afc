// The part of Node's API the client uses, for `tsc --checkJs` where
// @types/node is not installed. Projects with @types/node use theirs.

interface Buffer extends Uint8Array {
  subarray(start?: number, end?: number): Buffer;
  indexOf(value: string | number, byteOffset?: number): number;
  toString(encoding?: "utf8" | "ascii"): string;
}
declare var Buffer: {
  from(text: string, encoding?: "utf8" | "ascii"): Buffer;
  concat(buffers: readonly Uint8Array[]): Buffer;
  alloc(size: number): Buffer;
};

declare var process: { env: Record<string, string | undefined> };

declare module "node:child_process" {
  interface Readable {
    on(event: "data", listener: (chunk: Buffer) => void): this;
  }
  interface Writable {
    write(chunk: Uint8Array): boolean;
    end(): void;
    on(event: "error", listener: (error: Error) => void): this;
  }
  interface ChildProcess {
    readonly stdin: Writable;
    readonly stdout: Readable;
    readonly stderr: Readable;
    kill(signal?: string): boolean;
    on(event: "close", listener: (code: number | null) => void): this;
    on(event: "error", listener: (error: Error) => void): this;
  }
  function spawn(
    command: string,
    args: readonly string[],
    options: { env?: Record<string, string | undefined>; stdio?: readonly string[] },
  ): ChildProcess;
}
