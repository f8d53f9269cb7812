/**
 * The zod schemas shared by the operation table's parameters: ids, usernames, dates, billing
 * days, enumerations. Each one carries the message a caller sees when a value is refused, so the
 * message names what is allowed.
 *
 * @module
 */
import { z } from "zod";

/** The pattern every Account Server id follows: a lowercase prefix, a dash, a lowercase UUID. */
export const AS_ID_PATTERN =
  /^[a-z]{3,}-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/;

const UUID = "[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}";

/** API 4.4's rule for an Asset's name: 1 to 63 lowercase letters, digits or dashes. */
export const ASSET_NAME_PATTERN = /^[a-z0-9-]{1,63}$/;

/** A full Account Server id of a Product, Unit or Organisation: the scopes an Asset can have. */
export const SCOPE_ID_PATTERN = new RegExp(`^(product|unit|org)-${UUID}$`);

/** The prefixes of the id kinds the operations take. */
export type IdPrefix = "org" | "unit" | "product" | "asset";

/** The enumerations of API 4.4, as `operations.json` lists them. */
export const ENUMS = {
  DefaultProductPrivacy: ["ALWAYS_PUBLIC", "ALWAYS_PRIVATE", "DEFAULT_PUBLIC", "DEFAULT_PRIVATE"],
  AssetScope: ["USER", "PRODUCT", "UNIT", "ORGANISATION", "GLOBAL"],
  EventStreamFormat: ["JSON_STRING", "PROTOCOL_STRING"],
  ProductType: ["DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION", "DATA_MANAGER_STORAGE_SUBSCRIPTION"],
  Flavour: ["EVALUATION", "BRONZE", "SILVER", "GOLD"],
} as const;

/** An Account Server id with the given prefix, e.g. `org-<uuid>`. */
export function asId(prefix: IdPrefix, description: string): z.ZodString {
  return z
    .string({ error: `must be a string like "${prefix}-<uuid>"` })
    .regex(new RegExp(`^${prefix}-${UUID}$`), {
      error: `must be an id like "${prefix}-" followed by a lowercase UUID`,
    })
    .describe(`${description} (${prefix}-<uuid>)`);
}

/**
 * A username. Keycloak names are letters, digits and `. _ @ + -`; `.` and `..` alone are refused
 * because a URL would read them as path steps.
 */
export function username(description: string): z.ZodString {
  return z
    .string({ error: "must be a string" })
    .regex(/^(?!\.{1,2}$)[A-Za-z0-9._@+-]{1,255}$/, {
      error: 'must be 1-255 letters, digits or ". _ @ + -" (and not "." or "..")',
    })
    .describe(description);
}

/** A non-empty name of at most 255 characters. */
export function name(description: string): z.ZodString {
  return z
    .string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .max(255, { error: "must be at most 255 characters" })
    .describe(description);
}

/** An Asset's name, by API 4.4's rule `^[a-z0-9-]{1,63}$`. */
export function assetName(description: string): z.ZodString {
  return z
    .string({ error: "must be a string" })
    .regex(ASSET_NAME_PATTERN, {
      error: 'must be 1-63 lowercase letters, digits or "-" (API 4.4: ^[a-z0-9-]{1,63}$)',
    })
    .describe(`${description}: 1-63 lowercase letters, digits or "-"`);
}

/** A free text of at most 4,000 characters (descriptions). */
export function text(description: string): z.ZodString {
  return z
    .string({ error: "must be a string" })
    .max(4000, { error: "must be at most 4000 characters" })
    .describe(description);
}

/** A calendar date written `YYYY-MM-DD`. */
export function date(description: string): z.ZodString {
  return z
    .string({ error: 'must be a date "YYYY-MM-DD"' })
    .refine(isCalendarDate, { error: 'must be a real date written "YYYY-MM-DD"' })
    .describe(`${description}, YYYY-MM-DD`);
}

function isCalendarDate(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const parsed = new Date(Date.UTC(year, month - 1, day));
  return parsed.getUTCFullYear() === year && parsed.getUTCMonth() === month - 1 &&
    parsed.getUTCDate() === day;
}

/** An integer between `min` and `max` inclusive. */
export function integer(description: string, min: number, max: number): z.ZodNumber {
  const allowed = `an integer from ${min} to ${max}`;
  return z
    .number({ error: `must be ${allowed}` })
    .int({ error: `must be ${allowed}` })
    .min(min, { error: `must be ${allowed}` })
    .max(max, { error: `must be ${allowed}` })
    .describe(description);
}

/** A positive integer id (merchants, event streams). */
export function positiveId(description: string): z.ZodNumber {
  return integer(description, 1, Number.MAX_SAFE_INTEGER);
}

/** The billing day of a unit: 1..28. */
export function billingDay(): z.ZodNumber {
  return integer("Day of the month (1-28) on which the Unit's subscriptions are billed", 1, 28);
}

/** A prior billing period: 0 is the current one, -1 the one before, and so on. */
export function priorBillingPeriod(): z.ZodNumber {
  return integer(
    "Billing period: 0 the current one, -1 the previous, and so on",
    -1200,
    0,
  );
}

/** A coin amount (allowance, limit). */
export function coins(description: string): z.ZodNumber {
  return integer(description, 0, 1_000_000_000);
}

/** One of the values of an API enumeration. */
export function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  description: string,
): z.ZodEnum<{ [K in T[number]]: K }> {
  return z
    .enum(values, { error: `must be one of ${values.map((v) => `"${v}"`).join(", ")}` })
    .describe(description);
}

/** The optional charge window every charges operation takes. */
export function chargeWindow(): {
  from: z.ZodOptional<z.ZodString>;
  until: z.ZodOptional<z.ZodString>;
  pbp: z.ZodOptional<z.ZodNumber>;
} {
  return {
    from: date("First day (inclusive)").optional(),
    until: date("Day after the last day (exclusive)").optional(),
    pbp: priorBillingPeriod().optional(),
  };
}
