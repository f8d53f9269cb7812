/**
 * The `tools/list` answer. Every tool costs the model context in every conversation, so the
 * schemas say what a model needs and no more: they leave out what only the validator needs (id
 * patterns, length limits, the `$schema` marker, bounds at the integer limits) and share one
 * small output schema. They do say that no other argument is accepted, and the bounds of
 * `timeout_s`. Text never names a tool the operator's selection leaves out.
 *
 * @module
 */
import type { ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { Tool } from "./tool.ts";

/** The ApiRv shape, as zod: what every tool returns. */
export const API_RV_SHAPE = {
  success: z.boolean().describe("Whether the Account Server answered with a success status"),
  msg: z.record(z.string(), z.unknown()).describe(
    "The response body on success; { error, hint? } on failure",
  ),
  http_status_code: z.number().int().describe("HTTP status, or 0 when no response came"),
};

/** A JSON Schema object, as listed. */
export type JsonSchema = { [key: string]: unknown };

/** One tool of the listing. */
export interface ListedTool {
  name: string;
  description: string;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  annotations: Record<string, unknown>;
}

/** The ApiRv shape every tool returns, described once in the server's instructions. */
export const API_RV_JSON_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    success: { type: "boolean" },
    msg: { type: "object" },
    http_status_code: { type: "integer" },
  },
};

/** The longest `timeout_s` a tool call may ask for. */
export const MAX_TIMEOUT_S = 60;

/** The shortest `timeout_s` a tool call may ask for. */
export const MIN_TIMEOUT_S = 0.1;

/** `timeout_s`, which every tool takes, as listed: its bounds; the instructions say the rest. */
const TIMEOUT_JSON_SCHEMA: JsonSchema = {
  type: "number",
  minimum: MIN_TIMEOUT_S,
  maximum: MAX_TIMEOUT_S,
};

/** The hints' values when left out, as the MCP specification defines them. */
const HINT_DEFAULTS: Readonly<Record<string, boolean>> = {
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: false,
  openWorldHint: true,
};

/**
 * Annotations as listed: a hint that says what its default says is left out, and so are the
 * destructive and idempotent hints of a read-only tool, which the specification says only
 * matter for tools that change something. A client reads the same meaning from fewer tokens.
 */
export function listedAnnotations(annotations: ToolAnnotations): Record<string, unknown> {
  const listed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(annotations)) {
    if (HINT_DEFAULTS[key] === value) continue;
    if (annotations.readOnlyHint && (key === "destructiveHint" || key === "idempotentHint")) {
      continue;
    }
    listed[key] = value;
  }
  return listed;
}

const DROPPED = new Set(["$schema", "pattern", "minLength", "maxLength", "additionalProperties"]);

function compact(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(compact);
  if (typeof node !== "object" || node === null) return node;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED.has(key)) continue;
    if ((key === "maximum" || key === "minimum") && Math.abs(Number(value)) >= 2 ** 53 - 1) {
      continue;
    }
    out[key] = compact(value);
  }
  return out;
}

const CONVERTED = new WeakMap<z.ZodRawShape, JsonSchema>();

/** The listed input schema of a tool's parameters, plus `timeout_s`; converted once a shape. */
export function inputJsonSchema(shape: z.ZodRawShape): JsonSchema {
  let listed = CONVERTED.get(shape);
  if (!listed) {
    const schema = compact(z.toJSONSchema(z.object(shape), { io: "input" })) as JsonSchema;
    listed = {
      ...schema,
      properties: { ...(schema.properties as JsonSchema), timeout_s: TIMEOUT_JSON_SCHEMA },
      additionalProperties: false,
    };
    CONVERTED.set(shape, listed);
  }
  return listed;
}

const LISTINGS = new Map<string, ListedTool[]>();

/**
 * The listing of `tools`, built once for each selection (HTTP builds a server a session), with
 * every mention of a tool outside `known` ∖ offered taken out of the text.
 */
export function listTools(tools: readonly Tool[], known: Iterable<string>): ListedTool[] {
  const key = tools.map((t) => t.name).join(",");
  let listing = LISTINGS.get(key);
  if (!listing) {
    const offered = new Set(tools.map((t) => t.name));
    const absent = [...known].filter((name) => !offered.has(name));
    listing = tools.map((tool) => ({
      name: tool.name,
      description: withoutMentions(tool.description, absent),
      inputSchema: withoutMentionsIn(inputJsonSchema(tool.params), absent) as JsonSchema,
      outputSchema: API_RV_JSON_SCHEMA,
      annotations: listedAnnotations(tool.annotations),
    }));
    LISTINGS.set(key, listing);
  }
  return listing;
}

function mentions(text: string, names: readonly string[]): boolean {
  return names.some((name) => new RegExp(`\\b${name}\\b`).test(text));
}

/**
 * `text` without the mentions of `names`: a name in a parenthesised or "see …" list is taken out
 * of the list (the list with it when none is left), and any other sentence naming one is dropped.
 */
export function withoutMentions(text: string, names: readonly string[]): string {
  const absent = names.filter((name) => text.includes(name));
  if (!absent.length) return text;
  const items = (list: string) => {
    const kept = list.split(/,\s*/).filter((item) => !mentions(item, absent));
    return kept.join(", ");
  };
  const cleaned = text
    .replace(/\s*\(([^()]*)\)/g, (whole, inner: string) => {
      if (!mentions(inner, absent)) return whole;
      const kept = items(inner);
      return kept ? ` (${kept})` : "";
    })
    .replace(/,?\s*see ([a-z_]+(?:,\s*[a-z_]+)*)/g, (whole, list: string) => {
      if (!mentions(list, absent)) return whole;
      const kept = items(list);
      return kept ? `, see ${kept}` : "";
    });
  const lines = cleaned.split("\n").map((line) => {
    if (!mentions(line, absent)) return line;
    const kept = line.split(/(?<=[.:;])\s+/).filter((sentence) => !mentions(sentence, absent));
    // A list item that loses every sentence goes with them.
    return kept.length && !/^\W*$/.test(kept.join("")) ? kept.join(" ") : undefined;
  });
  return lines.filter((line) => line !== undefined).join("\n");
}

function withoutMentionsIn(node: unknown, names: readonly string[]): unknown {
  if (typeof node === "string") return withoutMentions(node, names);
  if (Array.isArray(node)) return node.map((item) => withoutMentionsIn(item, names));
  if (typeof node !== "object" || node === null) return node;
  return Object.fromEntries(
    Object.entries(node).map(([k, v]) => [k, k === "enum" ? v : withoutMentionsIn(v, names)]),
  );
}
