import assert from "node:assert/strict";
import { z } from "zod";
import { OPERATIONS, pathParams } from "../src/api/mod.ts";

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

for (const file of ["operations.json", "schemas.json"]) {
  Deno.test(`the committed ${file} is the shared reference's copy`, async (t) => {
    let shared: string;
    try {
      shared = await Deno.readTextFile(new URL(file, SHARED));
    } catch {
      return void t.step({ name: "../shared is not beside this checkout", ignore: true, fn() {} });
    }
    const committed = await Deno.readTextFile(new URL(`./fixtures/${file}`, import.meta.url));
    assert.deepEqual(JSON.parse(committed), JSON.parse(shared));
  });
}

Deno.test("the table has exactly the operations of operations.json, in order", () => {
  assert.equal(OPERATIONS.length, 54);
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
