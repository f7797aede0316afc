// JSON read with its integers exact. JSON.parse rounds an integer past 2^53
// to the nearest double (`12345678901234567890` became
// `12345678901234567000`), so a policy comparing a number from a blob, a
// file or a descriptor's size saw another number than the one written.
// Here an integer outside Number's safe range (±(2^53 - 1)) is a BigInt.
// Numbers with a fraction or an exponent stay numbers, as JSON.parse reads
// them.

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
  // Read by JSON.parse alone unless that rounded a number: any integer
  // outside the safe range reads as one (every double past 2^53 is an
  // integer), so walking the values finds it, in far less time than
  // searching the text would take.
  const value = JSON.parse(text);
  if (!holdsUnsafeInteger(value)) return value;
  return JSON.parse(marked(text), (_key, value) => {
    if (typeof value !== "string" || value.charCodeAt(0) !== 1) return value;
    return value.charCodeAt(1) === 1 ? value.slice(1) : BigInt(value.slice(1));
  });
}

/**
 * Whether `root` holds a number past Number's safe integers.
 * @param {unknown} root
 */
function holdsUnsafeInteger(root) {
  const stack = [root];
  while (stack.length) {
    const value = stack.pop();
    if (typeof value === "number") {
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) if (typeof item === "number" || (typeof item === "object" && item !== null)) stack.push(item);
    } else if (typeof value === "object" && value !== null) {
      for (const key in value) {
        const item = /** @type {Record<string, unknown>} */ (value)[key];
        if (typeof item === "number" || (typeof item === "object" && item !== null)) stack.push(item);
      }
    }
  }
  return false;
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
