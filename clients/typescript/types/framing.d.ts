/** @param {unknown} message */
export function encode(message: unknown): Buffer;
/**
 * Splits a byte stream into messages. A message's chunks are joined once,
 * when all of it has come: joining each chunk onto the ones before made a
 * 15 MB answer cost a copy of everything before it per 64 KiB chunk.
 */
export class Decoder {
    /**
     * What has come of the messages not yet read, and its length in bytes.
     * @type {Buffer[]}
     */
    chunks: Buffer[];
    length: number;
    /**
     * Where the current message's JSON starts and ends, once its header is read.
     * @type {{start: number, end: number} | null}
     */
    frame: {
        start: number;
        end: number;
    } | null;
    /**
     * @param {Buffer} chunk
     * @returns {unknown[]} the messages completed by this chunk; a frame whose
     *   body is not JSON is passed over
     * @throws {Error} on a header without a Content-Length: nothing after it can be read
     */
    push(chunk: Buffer): unknown[];
    #private;
}
