/**
 * Strict checking of a call's parameters against a zod shape: an unknown name is refused (with
 * the nearest valid name, where one is close), prototype keys included, and every other problem
 * is named with the parameter it concerns and what is allowed.
 *
 * @module
 */
import { z } from "zod";

/** Parameters that passed their check. */
export type Checked = { params: Record<string, unknown> } | { error: string };

/** How a call is checked. */
export interface CheckOptions {
  /** Named in messages: "unit_nme: not a parameter of get_units". */
  label: string;
  /** Names the caller may also use, checked elsewhere (e.g. `timeout_s`): suggested, not refused. */
  also?: readonly string[];
}

const SCHEMAS = new WeakMap<z.ZodRawShape, z.ZodType<Record<string, unknown>>>();

function schemaOf(shape: z.ZodRawShape): z.ZodType<Record<string, unknown>> {
  let schema = SCHEMAS.get(shape);
  if (!schema) {
    schema = z.object(shape) as unknown as z.ZodType<Record<string, unknown>>;
    SCHEMAS.set(shape, schema);
  }
  return schema;
}

/**
 * Checks `params` against `shape`: the known names are parsed by zod, and every name that is not
 * one of the shape's own (including `__proto__` and `constructor`) is refused.
 */
export function checkParams(shape: z.ZodRawShape, params: unknown, options: CheckOptions): Checked {
  const given = params ?? {};
  if (typeof given !== "object" || Array.isArray(given)) {
    return { error: "the arguments must be an object of named parameters" };
  }
  const names = Object.keys(shape);
  const unknown = Object.keys(given).filter((key) => !Object.hasOwn(shape, key));
  if (unknown.length) {
    const candidates = [...names, ...(options.also ?? [])];
    return {
      error: unknown.map((key) => {
        const near = nearestName(key, candidates);
        const hint = near ? `; did you mean ${near}?` : "";
        return `${key}: not a parameter of ${options.label}${hint}`;
      }).join("; "),
    };
  }
  const parsed = schemaOf(shape).safeParse(given);
  if (!parsed.success) return { error: describeIssues(parsed.error, given) };
  return { params: parsed.data };
}

/** `billing_day: must be an integer from 1 to 28; org_id: ...` from zod's issues. */
export function describeIssues(error: z.ZodError, input: unknown): string {
  return error.issues.map((issue) => {
    const where = issue.path.map(String).join(".");
    const given = issue.path.reduce<unknown>(
      (value, key) =>
        typeof value === "object" && value !== null && Object.hasOwn(value, key)
          ? (value as Record<PropertyKey, unknown>)[key]
          : undefined,
      input,
    );
    const message = issue.code === "invalid_type" && given === undefined
      ? "is required"
      : issue.message;
    return where ? `${where}: ${message}` : message;
  }).join("; ");
}

/**
 * The candidate closest to `name` by edit distance, if it is close enough to be a slip of the
 * keyboard (at most 2 edits, and fewer than half the name), or one contains the other.
 */
export function nearestName(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  if (!best) return undefined;
  if (best.distance <= Math.min(2, Math.floor(lower.length / 2))) return best.candidate;
  const containing = candidates.filter((c) =>
    lower.length >= 3 && (c.includes(lower) || lower.includes(c))
  );
  return containing.length === 1 ? containing[0] : undefined;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i, ...Array<number>(b.length).fill(0)]);
  }
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}
