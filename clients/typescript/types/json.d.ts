/**
 * @param {string} text
 * @returns {unknown} the value, with integers outside ±(2^53 - 1) as BigInt
 * @throws {SyntaxError} as JSON.parse throws
 */
export function parseJSON(text: string): unknown;
