import assert from "node:assert/strict";
import { z } from "zod";
import { type Operation, OPERATIONS, pathParams } from "../src/api/mod.ts";

interface Reference {
  name: string;
  http: string;
  path: string;
  token: boolean;
  success: number[];
  kind: string;
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: Record<string, string>;
  encoding?: string;
}

const FIXTURE = new URL("./fixtures/operations.json", import.meta.url);
const SHARED = new URL("../../shared/as-api/", import.meta.url);
const reference: Reference[] = JSON.parse(await Deno.readTextFile(FIXTURE)).operations;

/** Whether the shared reference is beside this checkout, as it is in CI. */
function sharedExists(): boolean {
  try {
    return Deno.statSync(SHARED).isDirectory;
  } catch {
    return false;
  }
}

const IN_CI = Deno.env.get("CI") === "true";

for (const file of ["operations.json", "schemas.json"]) {
  // Outside CI without ../shared the check is reported as ignored, never as passed; in CI it
  // must run, so a missing ../shared fails it.
  Deno.test({
    name: `the committed ${file} is the shared reference's copy`,
    ignore: !IN_CI && !sharedExists(),
    async fn() {
      const shared = await Deno.readTextFile(new URL(file, SHARED));
      const committed = await Deno.readTextFile(new URL(`./fixtures/${file}`, import.meta.url));
      assert.deepEqual(JSON.parse(committed), JSON.parse(shared));
    },
  });
}

Deno.test("the table has exactly the operations of operations.json, in order", () => {
  assert.deepEqual(OPERATIONS.map((o) => o.name), reference.map((r) => r.name));
});

for (const ref of reference) {
  Deno.test(`${ref.name} matches operations.json (method, path, token, codes, kind, fields)`, () => {
    const row = OPERATIONS.find((o) => o.name === ref.name)!;
    assert.equal(row.method, ref.http);
    assert.equal(row.path, ref.path);
    assert.equal(row.token, ref.token);
    assert.deepEqual([...row.success], ref.success);
    assert.equal(row.kind, ref.kind);
    assert.deepEqual(Object.keys(row.params).sort(), Object.keys(ref.params ?? {}).sort());
    if (typeof row.query === "function") {
      assert.match(Object.keys(ref.query ?? {})[0]!, /user_id \| product_id \| unit_id \| org_id/);
    } else {
      assert.deepEqual(row.query ?? {}, ref.query ?? {});
    }
    assert.deepEqual(Object.keys(row.body ?? {}).sort(), Object.keys(ref.body ?? {}).sort());
    const encodings: Record<string, string> = { json: "json", multipart: "multipart/form-data" };
    const encoding = row.encoding && encodings[row.encoding];
    assert.equal(encoding, ref.encoding);
  });
}

Deno.test("names are unique snake_case and every path parameter is an input", () => {
  assert.equal(new Set(OPERATIONS.map((o) => o.name)).size, OPERATIONS.length);
  for (const row of OPERATIONS) {
    assert.match(row.name, /^[a-z]+(_[a-z]+)*$/);
    for (const param of pathParams(row)) {
      assert.ok(param in row.params, `${row.name}: {${param}} is not an input`);
      assert.ok(!(row.params as Record<string, z.ZodType>)[param]!.safeParse(undefined).success);
    }
  }
});

Deno.test("deletes use DELETE and reads use GET, so kinds drive annotations safely", () => {
  for (const row of OPERATIONS) {
    assert.equal(row.kind === "delete", row.method === "DELETE", row.name);
    assert.equal(row.kind === "read", row.method === "GET", row.name);
  }
});

Deno.test("every input, title and description is written down", () => {
  for (const row of OPERATIONS) {
    assert.ok(row.title.length > 3 && row.description.length > 10, row.name);
    for (const [param, schema] of Object.entries(row.params as Record<string, z.ZodType>)) {
      let inner = schema;
      while (inner instanceof z.ZodOptional || inner instanceof z.ZodDefault) {
        inner = inner.unwrap() as z.ZodType;
      }
      assert.ok(inner.description, `${row.name}.${param} has no description`);
    }
    for (const source of Object.values(row.body ?? {})) {
      const param = typeof source === "string" ? source : source.param;
      assert.ok(param in row.params, `${row.name}: body uses unknown "${param}"`);
    }
    if (row.query && typeof row.query !== "function") {
      for (const param of Object.values(row.query)) assert.ok(param in row.params, row.name);
    }
  }
});

Deno.test("only ping and get_version, get_available_units and get_units share a method and path", () => {
  const byRequest = new Map<string, string[]>();
  for (const row of OPERATIONS) {
    const key = `${row.method} ${row.path}`;
    byRequest.set(key, [...(byRequest.get(key) ?? []), row.name]);
  }
  const shared = [...byRequest].filter(([, names]) => names.length > 1);
  assert.deepEqual(Object.fromEntries(shared), {
    "GET /version": ["ping", "get_version"],
    "GET /unit": ["get_available_units", "get_units"],
  });
});

Deno.test("the table declares which operation a shared request belongs to", () => {
  const declared = OPERATIONS.filter((row) => row.sameRequestAs !== undefined)
    .map((row) => [row.name, row.sameRequestAs]);
  assert.deepEqual(Object.fromEntries(declared), {
    ping: { operation: "get_version" },
    get_units: { operation: "get_available_units", unlessQuery: ["name"] },
  });
  assert.deepEqual(OPERATIONS.find((o) => o.name === "get_units")!.query, { name: "unit_name" });
});

/** A parameter's description, under `.optional()` and `.default()`. */
function describedAs(row: Operation, param: string): string {
  let inner = (row.params as Record<string, z.ZodType>)[param]!;
  while (inner instanceof z.ZodOptional || inner instanceof z.ZodDefault) {
    inner = inner.unwrap() as z.ZodType;
  }
  return inner.description ?? "";
}

const rowOf = (name: string): Operation => OPERATIONS.find((o) => o.name === name)!;
const TOOL_NAMES = new Set<string>(OPERATIONS.map((o) => o.name));

/**
 * The words of a row's texts that look like a parameter (snake_case, or a word of a slash list
 * such as "from/until/pbp") and are neither one of its parameters nor a tool.
 */
function unknownNames(row: Operation, texts: string[]): string[] {
  const words = texts.flatMap((text) => [
    ...[...text.matchAll(/\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b/g)].map((m) => m[0]),
    ...[...text.matchAll(/\b[a-z_]+(?:\/[a-z_]+)+\b/g)].flatMap((m) => m[0].split("/")),
  ]);
  return words.filter((word) => !(word in row.params) && !TOOL_NAMES.has(word));
}

Deno.test("the parameter check of descriptions catches a name that is not a parameter", () => {
  const getUnits = rowOf("get_units");
  assert.deepEqual(unknownNames(getUnits, ["Filter by unit_nme, or by from/until"]), [
    "unit_nme",
    "from",
    "until",
  ]);
  assert.deepEqual(unknownNames(getUnits, ["By unit_name; see get_available_units"]), []);
});

Deno.test("no description names a parameter the operation does not have", () => {
  for (const row of OPERATIONS) {
    const texts = [
      row.title,
      row.description,
      ...Object.keys(row.params).map((p) => describedAs(row, p)),
    ];
    assert.deepEqual(unknownNames(row, texts), [], row.name);
  }
});

Deno.test("get_actions describes from and until as dates of actions, not of charges", () => {
  const row = rowOf("get_actions");
  assert.equal(describedAs(row, "from"), "First day of the actions (inclusive), YYYY-MM-DD");
  assert.equal(
    describedAs(row, "until"),
    "Day after the last day of the actions (exclusive), YYYY-MM-DD",
  );
});

Deno.test("get_units and get_available_units each say when to use the other", () => {
  assert.match(rowOf("get_available_units").description, /To find Units by name, use get_units/);
  assert.match(rowOf("get_units").description, /Without unit_name it is get_available_units/);
});

Deno.test("content_file says uploads work only inside the operator's SQUONK2_MCP_FILE_ROOT", () => {
  for (const name of ["create_asset", "alter_asset"]) {
    assert.match(
      describedAs(rowOf(name), "content_file"),
      /Only inside the upload folder the operator set \(SQUONK2_MCP_FILE_ROOT\)/,
      name,
    );
  }
});

Deno.test("every change names an existing read operation that shows whether it was applied", () => {
  for (const row of OPERATIONS) {
    if (row.kind === "read") {
      assert.equal(row.shownBy, undefined, `${row.name} is a read`);
      continue;
    }
    const read = OPERATIONS.find((o) => o.name === row.shownBy);
    assert.ok(read, `${row.name}: shownBy "${row.shownBy}" is not an operation`);
    assert.equal(read.kind, "read", `${row.name}: ${read.name} is not a read`);
  }
});

Deno.test("a change is checked with the tool that would show it", () => {
  const shownBy = (name: string) => OPERATIONS.find((o) => o.name === name)?.shownBy;
  assert.equal(shownBy("create_unit"), "get_organisation_units");
  assert.equal(shownBy("alter_unit"), "get_unit");
  assert.equal(shownBy("delete_asset"), "get_available_assets");
  assert.equal(shownBy("add_user_to_organisation"), "get_organisation_users");
  assert.equal(shownBy("create_personal_unit"), "get_personal_unit");
});
