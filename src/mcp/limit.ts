/**
 * Keeps a tool result within a size the model can take: an answer above the limit is cut to a
 * valid result that keeps the first items of its largest lists and says what was left out, how
 * big the whole answer was, and how to ask for less.
 *
 * @module
 */

/** The default limit of a tool result, in bytes of JSON. */
export const DEFAULT_MAX_RESULT_BYTES = 65_536;

type Json = Record<string, unknown>;

const encoder = new TextEncoder();

function bytes(value: unknown): number {
  return byteLength(JSON.stringify(value));
}

/** The UTF-8 length of `text`, without encoding it when it is plainly short enough not to matter. */
export function byteLength(text: string, atMost = Infinity): number {
  // A UTF-16 code unit is at most 3 bytes of UTF-8.
  if (text.length * 3 <= atMost) return text.length;
  return encoder.encode(text).length;
}

/** The arrays in `value` (up to three levels down), as paths of keys, largest first. */
function arraysIn(value: unknown, path: string[] = [], depth = 0): string[][] {
  if (depth > 3 || typeof value !== "object" || value === null) return [];
  if (Array.isArray(value)) return [path];
  return Object.entries(value).flatMap(([k, v]) => arraysIn(v, [...path, k], depth + 1));
}

function getAt(value: Json, path: string[]): unknown[] {
  return path.reduce<unknown>((v, k) => (v as Json)[k], value) as unknown[];
}

function withArray(value: Json, path: string[], items: unknown[]): Json {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string, ...string[]];
  return {
    ...value,
    [head]: rest.length ? withArray(value[head] as Json, rest, items) : items,
  };
}

/**
 * `msg` if it fits in `maxBytes`; otherwise a copy whose largest lists keep only their first
 * items, with `truncated` saying what was cut.
 */
export function limitMsg(msg: Json, maxBytes: number, json = JSON.stringify(msg)): Json {
  if (byteLength(json, maxBytes) <= maxBytes) return msg;
  const total = byteLength(json);
  if (total <= maxBytes) return msg;
  // Room for the note added below.
  const budget = Math.max(0, maxBytes - 600);
  const kept: Record<string, string> = {};
  let out = msg;
  const paths = arraysIn(msg).sort((a, b) => bytes(getAt(msg, b)) - bytes(getAt(msg, a)));
  for (const path of paths) {
    if (bytes(out) <= budget) break;
    const items = getAt(out, path);
    let low = 0;
    let high = items.length;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if (bytes(withArray(out, path, items.slice(0, mid))) <= budget) low = mid;
      else high = mid - 1;
    }
    out = withArray(out, path, items.slice(0, low));
    kept[path.join(".") || "(the answer)"] = `${low} of ${items.length}`;
  }
  if (bytes(out) > budget) out = {};
  const truncated = {
    total_bytes: total,
    limit_bytes: maxBytes,
    kept,
    hint: "The answer was too large and has been cut: ask for less, e.g. one id, a scope_id, " +
      "or a shorter from/until window",
  };
  return { ...out, truncated };
}
