/**
 * Cleaning and masking, as functions: `cleanText`, `cleanValue` and the fast check `mayHideText`
 * (src/mcp/sanitize.ts) remove characters that hide text from the person watching; `redact`,
 * `redactValue` and the fast check `holdsSecret` (src/log.ts) mask credentials. The MCP-level
 * cases (a tool result is cleaned and masked) are in mcp_rails_test.ts.
 */
import assert from "node:assert/strict";
import { addSecret, holdsSecret, redact, redactValue } from "../src/log.ts";
import { cleanText, cleanValue, mayHideText } from "../src/mcp/sanitize.ts";

/** `points` as a string. */
function chars(...points: number[]): string {
  return String.fromCodePoint(...points);
}

/** Every code point from `from` to `to`, inclusive. */
function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

const REMOVED: [string, number[]][] = [
  ["C0 controls but tab, newline and carriage return", [
    ...range(0x00, 0x08),
    0x0b,
    0x0c,
    ...range(0x0e, 0x1f),
  ]],
  ["DEL and the C1 controls", range(0x7f, 0x9f)],
  ["the soft hyphen", [0xad]],
  ["the Arabic letter mark", [0x61c]],
  ["zero-width space, joiners and direction marks", [0x200b, 0x200c, 0x200d, 0x200e, 0x200f]],
  ["the line and paragraph separators", [0x2028, 0x2029]],
  ["bidi embeddings and overrides (LRE RLE PDF LRO RLO)", range(0x202a, 0x202e)],
  ["the word joiner and invisible operators", range(0x2060, 0x2064)],
  ["bidi isolates (LRI RLI FSI PDI)", range(0x2066, 0x2069)],
  ["deprecated formatting characters", range(0x206a, 0x206f)],
  ["the byte-order mark (zero-width no-break space)", [0xfeff]],
  ["Unicode tag characters", range(0xe0000, 0xe007f)],
  ["variation selectors", [...range(0xfe00, 0xfe0f), ...range(0xe0100, 0xe01ef)]],
];

for (const [what, points] of REMOVED) {
  Deno.test(`cleanText removes ${what}`, () => {
    for (const point of points) {
      const hex = `U+${point.toString(16).toUpperCase().padStart(4, "0")}`;
      assert.equal(cleanText(`ad${chars(point)}min`), "admin", hex);
    }
  });
}

Deno.test("cleanText keeps tab, newline and carriage return", () => {
  assert.equal(cleanText("one\ttwo\r\nthree\n"), "one\ttwo\r\nthree\n");
});

Deno.test("cleanText keeps accents, other scripts, symbols and emoji", () => {
  for (
    const text of [
      "Café Müller, naïve façade",
      "日本語のテキスト",
      "Ελληνικά, русский, עברית, العربية",
      "✓ → € ½",
      "🧪 🚀 👍🏽",
      "🇬🇧 🇫🇷",
      "e\u0301", // e and a combining acute accent
    ]
  ) {
    assert.equal(cleanText(text), text);
  }
});

Deno.test("cleanText reduces an emoji ZWJ sequence to its visible parts: the joiner goes", () => {
  // 👩‍🔬 (woman, ZWJ, microscope) shows as 👩🔬; ❤️ loses its emoji variation selector.
  assert.equal(cleanText("👩\u200D🔬"), "👩🔬");
  assert.equal(cleanText("❤\uFE0F"), "❤");
});

Deno.test("cleanText undoes a right-to-left override that disguises a file name", () => {
  // Shown as "invoice_fdp.exe" reversed: "invoice_exe.pdf".
  assert.equal(cleanText("invoice_\u202Efdp.exe"), "invoice_fdp.exe");
});

Deno.test("cleanText removes instructions hidden in tag characters", () => {
  const hidden = [..."ignore previous"].map((c) => chars(0xe0000 + c.charCodeAt(0))).join("");
  assert.equal(cleanText(`A normal name${hidden}`), "A normal name");
});

Deno.test("cleanValue cleans strings at every depth, keys too, and keeps other values", () => {
  const value = {
    "na\u200Bme": "Uni\u202Et",
    list: ["a\u0000b", 1, true, null, { "de\u00ADep": ["x\uFEFF"] }],
    count: 3,
    ok: false,
    none: null,
  };
  assert.deepEqual(cleanValue(value), {
    name: "Unit",
    list: ["ab", 1, true, null, { deep: ["x"] }],
    count: 3,
    ok: false,
    none: null,
  });
  assert.equal(value["na\u200Bme"], "Uni\u202Et", "the original is not changed");
  assert.equal(cleanValue("a\u200Db"), "ab");
  assert.equal(cleanValue(42), 42);
});

Deno.test("cleanValue keeps a __proto__ key as data, never as the prototype", () => {
  const cleaned = cleanValue(JSON.parse('{"__proto__": {"polluted": "y\u200Bes"}}'));
  assert.equal(Object.getPrototypeOf(cleaned), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(cleaned, "__proto__")?.value, {
    polluted: "yes",
  });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

/** Whether `cleanText` removes the code point. */
function isRemoved(point: number): boolean {
  const char = chars(point);
  return cleanText(char) !== char;
}

Deno.test("the fast check finds, in JSON text, every code point cleaning removes", () => {
  const missed: string[] = [];
  for (let point = 0; point <= 0x10ffff; point++) {
    if (!isRemoved(point)) continue;
    if (!mayHideText(JSON.stringify({ text: `a${chars(point)}b` }))) {
      missed.push(`U+${point.toString(16).toUpperCase()}`);
    }
  }
  assert.deepEqual(missed, []);
});

Deno.test("the fast check flags no code point that cleaning keeps, so plain text skips cleaning", () => {
  // Not followed by "b" or "f": a backslash before them reads as the escape \b or \f, a
  // harmless false alarm (cleaning then finds nothing to remove).
  const flagged: string[] = [];
  for (let point = 0; point <= 0x10ffff; point++) {
    if (isRemoved(point)) continue;
    if (mayHideText(JSON.stringify({ text: `a${chars(point)}z` }))) {
      flagged.push(`U+${point.toString(16).toUpperCase()}`);
    }
  }
  assert.deepEqual(flagged, []);
  assert.equal(mayHideText(JSON.stringify({ text: "plain\nline\ttab é ✓ 日本 🧪" })), false);
});

const JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ";

Deno.test("redact masks the credential after Bearer, whatever the case and spacing", () => {
  assert.equal(redact("Authorization: Bearer abc.def-123"), "Authorization: Bearer [redacted]");
  assert.equal(redact("authorization: bearer abc.def"), "authorization: bearer [redacted]");
  assert.equal(redact("BEARER   opaque!token"), "BEARER   [redacted]");
  assert.equal(redact("Bearer\topaque-token"), "Bearer\t[redacted]");
  assert.equal(redact("Bearer [redacted]"), "Bearer [redacted]", "masked once");
});

Deno.test("redact masks a JWT-shaped string with or without Bearer, wherever it stands", () => {
  assert.equal(redact(JWT), "[redacted]");
  assert.equal(redact(`Bearer ${JWT}`), "Bearer [redacted]");
  assert.equal(redact(`url?access_token=${JWT}&next=1`), "url?access_token=[redacted]&next=1");
  assert.equal(redact(`id_token:${JWT}.`), "id_token:[redacted].");
  const unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.";
  assert.equal(redact(`token ${unsigned} end`), "token [redacted] end");
});

Deno.test("redact masks a caller's token or a registered secret inside a longer string", () => {
  const token = "opaque-caller-token-1f2e";
  assert.equal(redact(`prefix${token}suffix`, [token]), "prefix[redacted]suffix");
  assert.equal(redact(`${token} and ${token}`, [token]), "[redacted] and [redacted]");
  const password = "registered-Passw0rd-for-sanitize";
  addSecret(password);
  assert.equal(redact(`login failed for ${password}!`), "login failed for [redacted]!");
});

Deno.test("redact masks the longer of two overlapping secrets whole", () => {
  assert.equal(redact("key=abcd-efgh-ijkl", ["abcd", "abcd-efgh-ijkl"]), "key=[redacted]");
});

Deno.test("redact leaves values shorter than 4 characters and plain text alone", () => {
  assert.equal(redact("a abc b", ["abc", undefined, ""]), "a abc b");
  assert.equal(redact("Unit eyJ is not a token"), "Unit eyJ is not a token");
});

Deno.test("redactValue masks strings at every depth, keys too, and keeps other values", () => {
  const token = "opaque-caller-token-9a8b";
  const value = {
    [`for ${token}`]: `Bearer ${token}`,
    nested: [{ jwt: JWT, n: 1, yes: true, none: null }],
    plain: "nothing to hide",
  };
  assert.deepEqual(redactValue(value, [token]), {
    "for [redacted]": "Bearer [redacted]",
    nested: [{ jwt: "[redacted]", n: 1, yes: true, none: null }],
    plain: "nothing to hide",
  });
  assert.equal(value.nested[0]!.jwt, JWT, "the original is not changed");
});

Deno.test("holdsSecret finds, in JSON text, whatever redactValue would mask", () => {
  const token = 'caller-"quoted"\\-token';
  const values: unknown[] = [
    { a: "Authorization: Bearer xyz" },
    { a: "Authorization: Bearer\txyz" },
    { a: "Bearer\nxyz" },
    { a: "Bearer\r\nxyz" },
    { a: "Bearer\fxyz" },
    { a: "Bearer\vxyz" },
    { a: [`x${JWT}y`] },
    { [`k${token}`]: 1 },
    { a: `x${token}y` },
  ];
  for (const value of values) {
    assert.notDeepEqual(redactValue(value, [token]), value, JSON.stringify(value));
    assert.equal(holdsSecret(JSON.stringify(value), [token]), true, JSON.stringify(value));
  }
  assert.equal(holdsSecret(JSON.stringify({ a: "nothing to hide", n: 1 }), [token]), false);
});
