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
 * Returns `text` with every registered secret, every bearer credential and anything shaped like
 * a JWT masked: callers' tokens on the HTTP transport are never registered one by one.
 */
export function redact(text: string): string {
  let out = text
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, `$1${MASK}`)
    .replace(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, MASK);
  for (const secret of secrets) out = out.replaceAll(secret, MASK);
  return out;
}

/** Writes one line to stderr, redacted. */
export function logLine(message: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`${redact(message)}\n`));
  } catch {
    // stderr closed: nothing useful can be done, and logging must never break a call.
  }
}
