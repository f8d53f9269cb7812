/**
 * Text that came from the Account Server (names, descriptions, asset content, error texts) is
 * data for the model, not instructions: control characters and invisible formatting characters,
 * which can hide text from the person watching, are removed before it reaches the model.
 *
 * @module
 */

// C0 and C1 controls (but tab, newline and carriage return), soft hyphen, zero-width and
// bidirectional controls, word joiners, the byte-order mark, Unicode tag characters, variation
// selectors, Hangul fillers, the combining grapheme joiner, Khmer inherent vowels, Mongolian
// variation selectors, the blank Braille pattern, interlinear annotation marks and the invisible
// musical formatting symbols.
const HIDDEN =
  // deno-lint-ignore no-control-regex -- matching control characters is the point here
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFEFF\u{E0000}-\u{E007F}\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u2800\u3164\uFE00-\uFE0F\uFFA0\uFFF9-\uFFFB\u{1D173}-\u{1D17A}\u{E0100}-\u{E01EF}]/gu;

/** `text` without control and invisible characters. */
export function cleanText(text: string): string {
  return text.replace(HIDDEN, "");
}

/** A copy of a JSON value with every string (keys too) cleaned. */
export function cleanValue<T>(value: T): T {
  if (typeof value === "string") return cleanText(value) as T;
  if (Array.isArray(value)) return value.map(cleanValue) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [cleanText(k), cleanValue(v)]),
    ) as T;
  }
  return value;
}

// The same characters as they appear in JSON text: C0 controls escaped (but \n, \r, \t), the
// rest as they are.
const HIDDEN_IN_JSON =
  /\\u00[01][0-9a-fA-F]|\\[bf]|[\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFEFF\u{E0000}-\u{E007F}\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u2800\u3164\uFE00-\uFE0F\uFFA0\uFFF9-\uFFFB\u{1D173}-\u{1D17A}\u{E0100}-\u{E01EF}]/u;

/** Whether JSON text may hold characters `cleanValue` removes (a fast check before cleaning). */
export function mayHideText(json: string): boolean {
  return HIDDEN_IN_JSON.test(json);
}
