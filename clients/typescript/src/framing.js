// Content-Length framing (as editors speak it): `Content-Length: N\r\n\r\n`
// followed by N bytes of JSON, in both directions.
import { parseJSON } from "./json.js";

/** @param {unknown} message */
export function encode(message) {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, "ascii"), body]);
}

/**
 * Splits a byte stream into messages. A message's chunks are joined once,
 * when all of it has come: joining each chunk onto the ones before made a
 * 15 MB answer cost a copy of everything before it per 64 KiB chunk.
 */
export class Decoder {
  constructor() {
    /**
     * What has come of the messages not yet read, and its length in bytes.
     * @type {Buffer[]}
     */
    this.chunks = [];
    this.length = 0;
    /**
     * Where the current message's JSON starts and ends, once its header is read.
     * @type {{start: number, end: number} | null}
     */
    this.frame = null;
  }

  /**
   * @param {Buffer} chunk
   * @returns {unknown[]} the messages completed by this chunk; a frame whose
   *   body is not JSON is passed over
   * @throws {Error} on a header without a Content-Length: nothing after it can be read
   */
  push(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const messages = [];
    for (;;) {
      if (!this.frame) {
        const buffer = this.#joined();
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) break;
        const header = buffer.subarray(0, end).toString("ascii");
        const match = /content-length:\s*(\d+)/i.exec(header);
        if (!match) throw new Error(`bad frame header: ${header}`);
        this.frame = { start: end + 4, end: end + 4 + Number(match[1]) };
      }
      if (this.length < this.frame.end) break;
      const buffer = this.#joined();
      try {
        messages.push(parseJSON(buffer.subarray(this.frame.start, this.frame.end).toString("utf8")));
      } catch {
        // not JSON: passed over, as the other clients pass such a line over
      }
      const rest = buffer.subarray(this.frame.end);
      this.chunks = rest.length ? [rest] : [];
      this.length = rest.length;
      this.frame = null;
    }
    return messages;
  }

  /** The chunks held, as one buffer. */
  #joined() {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }
}
