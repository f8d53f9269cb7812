/**
 * The typed API a program sees, as a `.d.ts`-style declaration of `as` generated from the
 * operation table: each offered operation's parameters (zod shape to TypeScript type) and the
 * first sentence of its description as a doc comment.
 *
 * @module
 */
import { z } from "zod";
import { OPERATIONS } from "../api/mod.ts";

type Schema = { [key: string]: unknown };

/** The TypeScript type of a JSON Schema node, as short as it can be said. */
function typeOf(node: Schema): string {
  if (Array.isArray(node.enum)) return node.enum.map((v) => JSON.stringify(v)).join("|");
  if (Array.isArray(node.anyOf)) return (node.anyOf as Schema[]).map(typeOf).join("|");
  switch (node.type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "array":
      return `${typeOf((node.items ?? {}) as Schema)}[]`;
    default:
      return "unknown";
  }
}

/** The parameter object of an operation, e.g. `{unit_id:string;name?:string}`, and whether any is required. */
export function paramsType(shape: z.ZodRawShape): { text: string; required: boolean } {
  const schema = z.toJSONSchema(z.object(shape), { io: "input", unrepresentable: "any" });
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(properties).map(([name, node]) =>
    `${name}${required.has(name) ? "" : "?"}:${typeOf(node)}`
  );
  return { text: `{${fields.join(";")}}`, required: required.size > 0 };
}

/** The first sentence of a description. */
function firstSentence(text: string): string {
  const end = text.search(/\.(\s+[A-Z]|$)/);
  return end >= 0 ? text.slice(0, end + 1) : text;
}

/**
 * The declaration of `as` for the offered operations: one line per method, with its doc comment.
 * A method whose parameters are all optional takes an optional argument.
 */
export function declarationOf(offered: Iterable<string>): string {
  const names = new Set(offered);
  // HTTP builds a server per session (per request when stateless): each selection is made once.
  const key = [...names].join(",");
  let declaration = DECLARATIONS.get(key);
  if (declaration === undefined) {
    declaration = declare(names);
    DECLARATIONS.set(key, declaration);
  }
  return declaration;
}

const DECLARATIONS = new Map<string, string>();

function declare(names: ReadonlySet<string>): string {
  const lines = OPERATIONS.filter((row) => names.has(row.name)).map((row) => {
    const params = paramsType(row.params);
    const arg = params.text === "{}" ? "" : `p${params.required ? "" : "?"}:${params.text}`;
    return `/** ${firstSentence(row.description)} */\n${row.name}(${arg}):R;`;
  });
  return [
    "type R=Promise<{success:boolean;msg:any;http_status_code:number}>;",
    "declare const as:{",
    ...lines,
    "};",
  ].join("\n");
}
