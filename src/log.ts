/**
 * The one way this project writes diagnostics: to stderr (stdout belongs to the MCP stdio
 * transport), with every registered secret masked.
 *
 * @module
 */

const secrets = new Set<string>();
const MASK = "[redacted]";

/** Registers a value (a token, a password) that must never be written anywhere. */
export function addSecret(value: string | undefined): void {
  // Very short values would mask ordinary words; real tokens and passwords are longer.
  if (value && value.length >= 4) secrets.add(value);
}

/**
 * Returns `text` with every registered secret and each of `also` (a caller's token), every
 * bearer credential and anything shaped like a JWT masked.
 */
export function redact(text: string, also: readonly (string | undefined)[] = []): string {
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const secret of [...also, ...secrets].sort((a, b) => (b?.length ?? 0) - (a?.length ?? 0))) {
    if (secret && secret.length >= 4) out = out.replaceAll(secret, MASK);
  }
  return out
    .replace(/(Bearer\s+)(?!\[redacted\])[\x21-\x7e]+/gi, `$1${MASK}`)
    .replace(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, MASK);
}

/** Whether `text` holds anything `redact` would mask. */
export function holdsSecret(text: string, also: readonly (string | undefined)[] = []): boolean {
  // As it is, and inside JSON text, where the space after Bearer may be escaped ("\t", "\u000b").
  if (/Bearer(?:\s|\\[fnrt]|\\u000b)|eyJ[A-Za-z0-9_-]+\./i.test(text)) return true;
  for (const secret of [...also, ...secrets]) {
    if (!secret || secret.length < 4) continue;
    // As it is, and as it appears inside JSON text.
    if (text.includes(secret) || text.includes(JSON.stringify(secret).slice(1, -1))) return true;
  }
  return false;
}

/** A copy of a JSON value with `redact` applied to every string (keys too). */
export function redactValue<T>(value: T, also: readonly (string | undefined)[] = []): T {
  if (typeof value === "string") return redact(value, also) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, also)) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [redact(k, also), redactValue(v, also)]),
    ) as T;
  }
  return value;
}

/** Writes one line to stderr, redacted. */
export function logLine(message: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`${redact(message)}\n`));
  } catch {
    // stderr closed: nothing useful can be done, and logging must never break a call.
  }
}
