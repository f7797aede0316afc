/** @param {unknown} message */
export function encode(message: unknown): Buffer;
/** Splits a byte stream into messages. */
export class Decoder {
    /** @type {Buffer} */
    buffer: Buffer;
    /**
     * @param {Buffer} chunk
     * @returns {unknown[]} the messages completed by this chunk
     */
    push(chunk: Buffer): unknown[];
}
