/**
 * Checks a body against a type of `schemas.json` (the real API's shapes): required fields present,
 * no unknown fields, primitives, arrays, unions, aliases and enumerations.
 */

interface TypeDef {
  fields?: Record<string, string>;
  enum?: string[];
  alias?: string;
}

const TYPES: Record<string, TypeDef> = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/schemas.json", import.meta.url)),
).types;

const PRIMITIVES: Record<string, (value: unknown) => boolean> = {
  string: (value) => typeof value === "string",
  number: (value) => typeof value === "number",
  boolean: (value) => typeof value === "boolean",
};

/** The problems found, each with the path where it is; empty when `value` fits `type`. */
export function shapeProblems(value: unknown, type: string, path = "msg"): string[] {
  const union = type.split("|").map((t) => t.trim());
  if (union.length > 1) {
    const attempts = union.map((t) => shapeProblems(value, t, path));
    return attempts.some((p) => p.length === 0) ? [] : attempts.flat();
  }
  if (type.endsWith("[]")) {
    if (!Array.isArray(value)) return [`${path}: expected an array of ${type.slice(0, -2)}`];
    return value.flatMap((item, i) => shapeProblems(item, type.slice(0, -2), `${path}[${i}]`));
  }
  const primitive = PRIMITIVES[type];
  if (primitive) {
    return primitive(value) ? [] : [`${path}: expected ${type}, got ${JSON.stringify(value)}`];
  }
  if (type === "unknown" || type === "Blob") return [];
  const def = TYPES[type];
  if (!def) return [`${path}: unknown type ${type}`];
  if (def.alias) return shapeProblems(value, def.alias, path);
  if (def.enum) {
    return def.enum.includes(value as string)
      ? []
      : [`${path}: ${JSON.stringify(value)} not in ${type}`];
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [`${path}: expected an object of type ${type}`];
  }
  const record = value as Record<string, unknown>;
  const fields = def.fields ?? {};
  if ("[key: string]" in fields) return [];
  const problems: string[] = [];
  const known = new Set<string>();
  for (const [rawName, fieldType] of Object.entries(fields)) {
    const optional = rawName.endsWith("?");
    const name = optional ? rawName.slice(0, -1) : rawName;
    known.add(name);
    if (!(name in record)) {
      if (!optional) problems.push(`${path}.${name}: missing (${type})`);
      continue;
    }
    problems.push(...shapeProblems(record[name], fieldType, `${path}.${name}`));
  }
  for (const name of Object.keys(record)) {
    if (!known.has(name)) problems.push(`${path}.${name}: not a field of ${type}`);
  }
  return problems;
}
