// JSON read with its integers exact. JSON.parse rounds an integer past 2^53
// to the nearest double (`12345678901234567890` became
// `12345678901234567000`), so a policy comparing a number from a blob, a
// file or a descriptor's size saw another number than the one written.
// Here an integer outside Number's safe range (±(2^53 - 1)) is a BigInt.
// Numbers with a fraction or an exponent stay numbers, as JSON.parse reads
// them.

// Only text with a number of 16 digits or more can hold such an integer:
// the rest is read by JSON.parse alone (see mayHoldLongInteger).
const DIGIT_RUN = /\d{16,}/g;
// An integer too long for a number is handed to JSON.parse as a string
// starting with U+0001, and read back by the reviver. JSON text cannot
// hold U+0001 raw inside a string, only escaped, so a string of the text
// that starts with it is found by its escape and given a second one.
const MARK = "\u0001";
const NEXT_TOKEN = /["\-0-9]/g;
const STRING_END = /["\\]/g;
const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
const MARKED_STRING = /"\\u0001/iy;
const SPACE = /[ \t\r\n]*/y;

/**
 * @param {string} text
 * @returns {unknown} the value, with integers outside ±(2^53 - 1) as BigInt
 * @throws {SyntaxError} as JSON.parse throws
 */
export function parseJSON(text) {
  if (!mayHoldLongInteger(text)) return JSON.parse(text);
  return JSON.parse(marked(text), (_key, value) => {
    if (typeof value !== "string" || value.charCodeAt(0) !== 1) return value;
    return value.charCodeAt(1) === 1 ? value.slice(1) : BigInt(value.slice(1));
  });
}

/**
 * Whether `text` has a run of 16 digits or more placed as a number is: after
 * `:`, `,`, `[`, a `-` or the start (and spaces), and before `,`, `}`, `]`,
 * a space or the end. A digest's run of digits (after `sha256:`) is
 * followed by more of the digest or its quote, so manifests, which hold
 * many, are read by JSON.parse alone; a string that looks like a number
 * there is read right by the slow path.
 * @param {string} text
 */
function mayHoldLongInteger(text) {
  DIGIT_RUN.lastIndex = 0;
  for (let run = DIGIT_RUN.exec(text); run; run = DIGIT_RUN.exec(text)) {
    const after = text.charCodeAt(run.index + run[0].length);
    if (!(Number.isNaN(after) || after === 0x2c || after === 0x7d || after === 0x5d || isSpace(after))) continue;
    let before = run.index - 1;
    if (text.charCodeAt(before) === 0x2d /* - */) before -= 1;
    while (before >= 0 && isSpace(text.charCodeAt(before))) before -= 1;
    const previous = text.charCodeAt(before);
    if (before < 0 || previous === 0x3a || previous === 0x2c || previous === 0x5b) return true;
  }
  return false;
}

/** @param {number} char */
function isSpace(char) {
  return char === 0x20 || char === 0x0a || char === 0x0d || char === 0x09;
}

/**
 * `text` with each long integer written as a marked string, and each string
 * value that starts with the mark marked once more.
 * @param {string} text
 */
function marked(text) {
  let out = "";
  let copied = 0;
  NEXT_TOKEN.lastIndex = 0;
  for (let token = NEXT_TOKEN.exec(text); token; token = NEXT_TOKEN.exec(text)) {
    const at = token.index;
    if (token[0] === '"') {
      let end = text.length;
      STRING_END.lastIndex = at + 1;
      for (let found = STRING_END.exec(text); found; found = STRING_END.exec(text)) {
        if (found[0] === '"') {
          end = found.index;
          break;
        }
        STRING_END.lastIndex = found.index + 2;
      }
      MARKED_STRING.lastIndex = at;
      if (MARKED_STRING.test(text)) {
        SPACE.lastIndex = end + 1;
        SPACE.test(text);
        // Keys are not revived, so only a value gets its second mark.
        if (text.charCodeAt(SPACE.lastIndex) !== 0x3a /* : */) {
          out += text.slice(copied, at + 1) + "\\u0001";
          copied = at + 1;
        }
      }
      NEXT_TOKEN.lastIndex = end + 1;
    } else {
      NUMBER.lastIndex = at;
      const match = NUMBER.exec(text);
      if (!match) return text; // not JSON: JSON.parse says why
      const end = at + match[0].length;
      if (match[1] === undefined && match[2] === undefined && !Number.isSafeInteger(Number(match[0]))) {
        out += text.slice(copied, at) + JSON.stringify(MARK + match[0]);
        copied = end;
      }
      NEXT_TOKEN.lastIndex = end;
    }
  }
  return out + text.slice(copied);
}
