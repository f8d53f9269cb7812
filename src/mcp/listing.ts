/**
 * The `tools/list` answer, built once per server and kept: every tool costs the model context on
 * every conversation, so the schemas say what a model needs and no more. Validation is not
 * weakened: the full zod schemas still check every call; the listing leaves out what only the
 * validator needs (id patterns, length limits, the `$schema` marker, bounds at the integer
 * limits) and shares one small output schema.
 *
 * @module
 */
import { z } from "zod";

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

/** `timeout_s`, which every tool takes, as listed: the server's instructions explain it once. */
export const TIMEOUT_JSON_SCHEMA: JsonSchema = { type: "number" };

/** The listed input schema of an operation's zod shape, plus `timeout_s`. */
export function inputJsonSchema(shape: z.ZodRawShape): JsonSchema {
  const schema = compact(z.toJSONSchema(z.object(shape), { io: "input" })) as JsonSchema;
  return {
    ...schema,
    properties: { ...(schema.properties as JsonSchema), timeout_s: TIMEOUT_JSON_SCHEMA },
  };
}
