/**
 * Every operation of the table, called once through the client against the stub over real HTTP:
 * the request the stub received (method, path, query, body, Authorization) and the ApiRv returned.
 */
import assert from "node:assert/strict";
import { type ApiRv, AsApi, OPERATIONS } from "../src/api/mod.ts";
import { startStub } from "../src/stub/mod.ts";
import { seedIds } from "./_helpers.ts";
import { CASES, type Ids, STUB_NOW } from "./_cases.ts";
import { shapeProblems } from "./_schemas.ts";

const RESPONSES: Record<string, string | undefined> = Object.fromEntries(
  JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/operations.json", import.meta.url)),
  ).operations.map((o: { name: string; response?: string }) => [o.name, o.response]),
);

Deno.test("every operation of the table has a case here", () => {
  assert.deepEqual(Object.keys(CASES).sort(), OPERATIONS.map((o) => o.name).sort());
});

for (const [name, c] of Object.entries(CASES)) {
  const row = OPERATIONS.find((o) => o.name === name)!;
  const expected = c.sent({} as Ids);
  Deno.test(`${name} sends ${expected.method} ${row.path} and returns its ApiRv`, async () => {
    const stub = await startStub({ now: () => STUB_NOW });
    try {
      const seeded = seedIds(stub);
      const ids: Ids = { ...seeded, ...(c.setup?.(stub, seeded) ?? {}) };
      const api = new AsApi({ url: stub.url, env: () => undefined });
      const token = c.as ? stub.tokens[c.as] : undefined;
      const rv: ApiRv = await api.callByName(name, c.params(ids), { token });

      assert.equal(stub.requests.length, 1, "exactly one request reaches the server");
      const got = stub.requests[0]!;
      const want = c.sent(ids);
      assert.equal(got.method, want.method);
      assert.equal(got.path, want.path);
      assert.deepEqual(got.query, want.query ?? {});
      assert.deepEqual(got.body, want.body);
      assert.equal(got.authorization, token ? `Bearer ${token}` : null);
      assert.equal(rv.http_status_code, c.status, JSON.stringify(rv.msg));
      assert.equal(rv.success, true);
      c.check(rv.msg, stub, ids);
      const response = RESPONSES[name];
      if (response) assert.deepEqual(shapeProblems(rv.msg, response), [], `${response} shape`);
      else assert.deepEqual(rv.msg, {}, "an operation without a response type answers no body");
    } finally {
      await stub.shutdown();
    }
  });
}
