/**
 * Keeps a tool result within a size the model can take: an answer above the limit is cut to a
 * valid result that keeps its small fields and the first items of its largest lists, and says
 * what was left out, how big the whole answer was, and how to ask for less.
 *
 * Sizes are UTF-8 bytes of JSON. The cut measures each value it looks at once and keeps running
 * totals, looking at most a few levels down, so its cost grows with the answer's size and no
 * faster, whatever the answer's shape.
 *
 * @module
 */

/** The default limit of a tool result, in bytes of JSON. */
export const DEFAULT_MAX_RESULT_BYTES = 65_536;

/** Room kept for what the tool result puts around `msg`: `{"success":…,"msg":…,"http_status_code":…}`. */
export const ENVELOPE_BYTES = 64;

/** How deep the cut looks; anything deeper that does not fit is left out whole. */
const MAX_DEPTH = 4;
/** Room kept for the `kept` entries of the note. */
const KEPT_BYTES = 400;
/** The longest path named in the note, in characters. */
const MAX_PATH_CHARS = 80;
/** A string is cut to a prefix only if at least this many bytes of it would be kept. */
const MIN_STRING_BYTES = 32;

const HINT = "The answer was too large and has been cut: ask for less, e.g. one id, a scope_id, " +
  "or a shorter from/until window";

type Json = Record<string, unknown>;

/** Thrown inside the cut when the call's time is up. */
class OutOfTime extends Error {}

/** When the cut under way must give up (`performance.now()` time), and a counter of its steps. */
let stopAt = Infinity;
let steps = 0;

/** Counts a step of the cut, and every 1,024 steps gives up if the call's time is up. */
function step(): void {
  if ((++steps & 1023) === 0 && performance.now() > stopAt) throw new OutOfTime();
}

/** The UTF-8 length of `text` in bytes (a lone surrogate counts as U+FFFD, 3 bytes). */
export function byteLength(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c < 0xdc00 && isLowSurrogate(text.charCodeAt(i + 1))) {
      // A surrogate pair: two units, four bytes.
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c < 0xe000;
}

/** The UTF-8 size of `value` as JSON (what `JSON.stringify` gives; `undefined` as in a list). */
function sizeOf(value: unknown): number {
  const json = JSON.stringify(value);
  return json === undefined ? 4 : byteLength(json);
}

/** A part of the answer as kept, and its size in bytes. */
interface Fitted {
  value: unknown;
  bytes: number;
}

/** What was cut where, most important first. */
type Notes = [path: string, what: string][];

/**
 * `value` (of `bytes` bytes), or a cut version of it, in at most `budget` bytes; undefined if
 * nothing useful fits.
 */
function fit(
  value: unknown,
  bytes: number,
  budget: number,
  context: { path: string[]; notes: Notes },
): Fitted | undefined {
  if (budget <= 0) return undefined;
  if (bytes <= budget) return { value, bytes };
  const { path, notes } = context;
  if (path.length >= MAX_DEPTH) return undefined;
  if (typeof value === "string") return fitString(value, budget, path, notes);
  if (Array.isArray(value)) return fitArray(value, budget, path, notes);
  if (typeof value === "object" && value !== null) {
    return fitObject(value as Json, budget, path, notes);
  }
  return undefined;
}

/**
 * The first items of `items` that fit; then, if the next one is too big to ever fit whole, a cut
 * version of it.
 */
function fitArray(items: unknown[], budget: number, path: string[], notes: Notes) {
  let bytes = 2;
  let kept = 0;
  let nextBytes = 0;
  for (const item of items) {
    step();
    nextBytes = sizeOf(item);
    if (bytes + nextBytes + (kept ? 1 : 0) > budget) break;
    bytes += nextBytes + (kept ? 1 : 0);
    kept++;
  }
  const at = notes.length;
  notes.push([pathText(path), `${kept} of ${items.length}`]);
  const room = budget - bytes - (kept ? 1 : 0);
  const context = { path: [...path, String(kept)], notes };
  const next = kept < items.length && nextBytes > budget
    ? fit(items[kept], nextBytes, room, context)
    : undefined;
  if (next) {
    notes[at] = [pathText(path), `${kept + 1} of ${items.length}, the last cut`];
    return {
      value: [...items.slice(0, kept), next.value],
      bytes: bytes + next.bytes + (kept ? 1 : 0),
    };
  }
  if (!kept) {
    notes.length = at;
    return undefined;
  }
  return { value: items.slice(0, kept), bytes };
}

/** An entry of an object, with its size as `"key":value`. */
interface Entry {
  key: string;
  value: unknown;
  keyBytes: number;
  bytes: number;
}

/** Every small entry of `object` as it is, and cut versions of its largest, in their order. */
function fitObject(object: Json, budget: number, path: string[], notes: Notes) {
  const entries: Entry[] = Object.entries(object).filter(([, v]) => v !== undefined).map(
    ([key, value]) => {
      step();
      const keyBytes = sizeOf(key) + 1;
      return { key, value, keyBytes, bytes: keyBytes + sizeOf(value) };
    },
  );
  // Take out the largest entries until the rest fits.
  const largest = [...entries].sort((a, b) => b.bytes - a.bytes);
  let rest = 2 + entries.reduce((n, e) => n + e.bytes, 0) + Math.max(0, entries.length - 1);
  let cut = 0;
  while (rest > budget && cut < largest.length) rest -= largest[cut++]!.bytes + 1;
  rest = Math.max(rest, 2);
  // Give the room left to the entries taken out, largest first.
  const fitted = new Map<Entry, unknown>();
  const at = notes.length;
  notes.push(["", ""]);
  for (const entry of largest.slice(0, cut)) {
    const room = budget - rest - entry.keyBytes - 1;
    const context = { path: [...path, entry.key], notes };
    const part = fit(entry.value, entry.bytes - entry.keyBytes, room, context);
    if (!part) continue;
    fitted.set(entry, part.value);
    rest += entry.keyBytes + part.bytes + 1;
  }
  const kept = entries.length - cut + fitted.size;
  if (!kept) {
    notes.length = at;
    return undefined;
  }
  if (kept < entries.length) notes[at] = [pathText(path), `${kept} of ${entries.length} keys`];
  else notes.splice(at, 1);
  const out: Json = {};
  const taken = new Set(largest.slice(0, cut));
  for (const entry of entries) {
    if (!taken.has(entry)) out[entry.key] = entry.value;
    else if (fitted.has(entry)) out[entry.key] = fitted.get(entry);
  }
  return { value: out, bytes: rest };
}

/** The longest prefix of `text` whose JSON fits in `budget`, if it is worth keeping. */
function fitString(text: string, budget: number, path: string[], notes: Notes) {
  let bytes = 2;
  let end = 0;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    const pair = c >= 0xd800 && c < 0xdc00 && isLowSurrogate(text.charCodeAt(end + 1));
    const add = jsonCharBytes(c, pair);
    if (bytes + add > budget) break;
    bytes += add;
    end += pair ? 2 : 1;
  }
  if (bytes - 2 < MIN_STRING_BYTES) return undefined;
  notes.push([pathText(path), `first ${end} of ${text.length} characters`]);
  return { value: text.slice(0, end), bytes };
}

/** The bytes `JSON.stringify` writes for one character (a pair counts once, as 4). */
function jsonCharBytes(c: number, pair: boolean): number {
  if (pair) return 4;
  if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x0c) return 2;
  if (c === 0x0a || c === 0x0d || c === 0x09) return 2;
  if (c < 0x20) return 6;
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  // A lone surrogate is written as \uXXXX.
  if (c >= 0xd800 && c < 0xe000) return 6;
  return 3;
}

function pathText(path: string[]): string {
  const text = path.join(".") || "(the answer)";
  return text.length > MAX_PATH_CHARS ? `${text.slice(0, MAX_PATH_CHARS - 1)}…` : text;
}

/** What limitMsg may know already. */
export interface LimitOptions {
  /** `msg` as JSON, if already serialised. */
  json?: string;
  /** Bytes that will be added to `msg` later (such as a hint), to leave room for. */
  addedBytes?: number;
  /**
   * When the call's time is up (`performance.now()` time): a cut still under way then gives up
   * and keeps only the note, so a huge answer cannot hold the call past its `timeout_s`.
   */
  deadline?: number;
}

/**
 * `msg` if it fits in `maxBytes` (with room for the tool result around it); otherwise a copy
 * that keeps its small fields and the first items of its largest lists, dropping what does not
 * fit, with `truncated` saying what was cut. Either way, at most `maxBytes - ENVELOPE_BYTES -
 * addedBytes` bytes of JSON.
 */
export function limitMsg(msg: Json, maxBytes: number, options: LimitOptions = {}): Json {
  const json = options.json ?? JSON.stringify(msg);
  const target = maxBytes - ENVELOPE_BYTES - (options.addedBytes ?? 0);
  const total = byteLength(json);
  if (total <= target) return msg;
  const note = (kept: Record<string, string>) => ({
    total_bytes: total,
    limit_bytes: maxBytes,
    kept,
    hint: HINT,
  });
  // `,"truncated":` and the note without its entries.
  const noteBytes = 13 + sizeOf(note({}));
  const notes: Notes = [];
  let fitted: Fitted | undefined;
  stopAt = options.deadline ?? Infinity;
  steps = 0;
  try {
    fitted = fit(msg, total, target - noteBytes - KEPT_BYTES, { path: [], notes });
  } catch (error) {
    if (error instanceof OutOfTime) return { truncated: note({}) };
    throw error;
  } finally {
    stopAt = Infinity;
  }
  const out = (fitted?.value ?? {}) as Json;
  let bytes = (fitted?.bytes ?? 2) + noteBytes;
  const kept: Record<string, string> = {};
  for (const [path, what] of notes) {
    const add = sizeOf(path) + 1 + sizeOf(what) + (Object.keys(kept).length ? 1 : 0);
    if (path in kept || bytes + add > target) continue;
    kept[path] = what;
    bytes += add;
  }
  const limited = { ...out, truncated: note(kept) };
  // The sums above are exact; this only guards against a mistake in them.
  if (sizeOf(limited) > target) return { truncated: note({}) };
  return limited;
}
