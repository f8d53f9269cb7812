/**
 * The stub Account Server's own rules, seen with raw `fetch` (the client would refuse some of
 * these requests before sending them): 401, 403, 404, 400, faults, and `deno task stub`.
 */
import assert from "node:assert/strict";
import { AsApi, ASSET_NAME_PATTERN } from "../src/api/mod.ts";
import { SEED_USERS, startStub, type StubServer } from "../src/stub/mod.ts";
import { seedIds } from "./_helpers.ts";

async function withStub(fn: (stub: StubServer) => Promise<void>): Promise<void> {
  const stub = await startStub();
  try {
    await fn(stub);
  } finally {
    await stub.shutdown();
  }
}

async function send(
  stub: StubServer,
  method: string,
  path: string,
  init: { token?: string; body?: string; type?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.type) headers["content-type"] = init.type;
  const response = await fetch(`${stub.url}${path}`, { method, headers, body: init.body });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

Deno.test("the stub answers 401 with no token or an unknown one, and serves /version without", () =>
  withStub(async (stub) => {
    assert.deepEqual(await send(stub, "GET", "/user/account"), {
      status: 401,
      body: { error: "Missing or invalid access token" },
    });
    assert.equal((await send(stub, "GET", "/unit", { token: "forged" })).status, 401);
    assert.deepEqual(await send(stub, "GET", "/version"), {
      status: 200,
      body: { version: "4.4.0" },
    });
  }));

Deno.test("the stub answers 403 to non-admins and non-members", () =>
  withStub(async (stub) => {
    const ids = seedIds(stub);
    const bob = stub.tokens.bob;
    const denied = [
      await send(stub, "POST", "/organisation", {
        token: bob,
        type: "application/json",
        body: JSON.stringify({ name: "X", owner: "bob" }),
      }),
      await send(stub, "GET", "/charges", { token: bob }),
      await send(stub, "GET", `/unit/${ids.unit}`, { token: bob }),
      await send(stub, "GET", `/product/${ids.storageProduct}`, { token: bob }),
      await send(stub, "DELETE", `/event-stream/${ids.bobStream - 1}`, { token: bob }),
    ];
    assert.deepEqual(denied.map((r) => r.status), [403, 403, 403, 403, 403]);
    for (const reply of denied) {
      assert.equal(typeof (reply.body as { error: unknown }).error, "string");
    }
  }));

Deno.test("the stub answers 404 for unknown ids and unknown routes, 405 for a wrong method", () =>
  withStub(async (stub) => {
    const admin = stub.tokens.admin;
    const unknownOrg = "org-00000000-0000-4000-8000-00000000abcd";
    assert.equal(
      (await send(stub, "GET", `/organisation/${unknownOrg}`, { token: admin })).status,
      404,
    );
    assert.equal((await send(stub, "GET", "/merchant/99", { token: admin })).status, 404);
    assert.equal((await send(stub, "GET", "/no-such-thing", { token: admin })).status, 404);
    assert.equal((await send(stub, "POST", "/version")).status, 405);
  }));

Deno.test("the stub answers 400 for a bad body and breaks no rule of the real API", () =>
  withStub(async (stub) => {
    const ids = seedIds(stub);
    const alice = { token: stub.tokens.alice, type: "application/json" };
    const cases: [string, string, string, RegExp][] = [
      ["POST", `/organisation/${ids.org}/unit`, "{not json", /not valid JSON/],
      ["POST", `/organisation/${ids.org}/unit`, '{"name": "U", "billing_day": 31}', /billing_day/],
      ["POST", `/organisation/${ids.org}/unit`, '["name"]', /JSON object/],
      [
        "POST",
        `/product/unit/${ids.unit}`,
        '{"name": "S", "type": "DATA_MANAGER_STORAGE_SUBSCRIPTION", "flavour": "GOLD"}',
        /storage subscription has no flavour/,
      ],
      [
        "POST",
        `/product/unit/${ids.unit}`,
        '{"name": "P", "type": "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION"}',
        /needs a flavour/,
      ],
      ["DELETE", `/unit/${ids.unit}`, "", /still has Products/],
      ["PUT", "/personal-unit", '{"billing_day": 2}', /already have a personal unit/],
    ];
    for (const [method, path, body, error] of cases) {
      const reply = await send(stub, method, path, { ...alice, body: body || undefined });
      assert.equal(reply.status, 400, `${method} ${path} ${body}`);
      assert.match((reply.body as { error: string }).error, error);
    }
  }));

Deno.test("a fault with `times` applies that many times, then the route behaves again", () =>
  withStub(async (stub) => {
    stub.inject("get_version", { status: 503, body: "busy", times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${stub.url}/version`)).status);
    assert.deepEqual(statuses, [503, 503, 200]);
    assert.equal(stub.requests.length, 3, "faulty requests are still recorded");
    assert.throws(() => stub.inject("no_such_operation", {}), /Unknown operation/);
  }));

Deno.test("the stub's log names the operation of each request, by the table's shared requests", () =>
  withStub(async (stub) => {
    const api = new AsApi({ url: stub.url, env: () => undefined });
    const token = stub.tokens.alice;
    await api.call("get_version", {});
    await api.call("ping", {});
    await api.call("get_available_units", {}, { token });
    await api.call("get_units", { unit_name: "Chemistry" }, { token });
    await api.call("get_units", {}, { token });
    assert.deepEqual(stub.requests.map((r) => [r.path, r.query, r.operation]), [
      ["/version", {}, "get_version"],
      ["/version", {}, "get_version"],
      ["/unit", {}, "get_available_units"],
      ["/unit", { name: "Chemistry" }, "get_units"],
      ["/unit", {}, "get_available_units"],
    ]);
  }));

Deno.test("a fault for get_units hits only requests with a name, one for get_available_units the rest", () =>
  withStub(async (stub) => {
    const api = new AsApi({ url: stub.url, env: () => undefined });
    const token = stub.tokens.alice;
    const statuses = async () => [
      (await api.call("get_available_units", {}, { token })).http_status_code,
      (await api.call("get_units", { unit_name: "Chemistry" }, { token })).http_status_code,
    ];
    stub.inject("get_units", { status: 503 });
    assert.deepEqual(await statuses(), [200, 503]);
    stub.clearFaults();
    stub.inject("get_available_units", { status: 503 });
    assert.deepEqual(await statuses(), [503, 200]);
  }));

Deno.test("a fault cannot be injected on ping, whose request is get_version's", () =>
  withStub(async (stub) => {
    assert.throws(
      () => stub.inject("ping", { status: 503 }),
      /^Error: "ping" sends the same request as "get_version": inject on "get_version"$/,
    );
    stub.inject("get_version", { status: 503 });
    const api = new AsApi({ url: stub.url, env: () => undefined });
    assert.equal((await api.call("ping", {})).http_status_code, 503, "as on a real server");
  }));

Deno.test("the stub refuses a JSON body on create_asset and alter_asset, and a form on create_unit", () =>
  withStub(async (stub) => {
    const ids = seedIds(stub);
    const alice = stub.tokens.alice;
    const asJson = {
      token: alice,
      type: "application/json",
      body: JSON.stringify({ name: "key", scope: "USER", scope_id: "alice", content_string: "x" }),
    };
    assert.deepEqual(await send(stub, "POST", "/asset", asJson), {
      status: 415,
      body: { error: 'The request body must be multipart/form-data, not "application/json"' },
    });
    const alter = await send(stub, "PATCH", `/asset/${ids.aliceAsset}`, {
      ...asJson,
      body: '{"description": "d"}',
    });
    assert.equal(alter.status, 415);
    assert.equal(
      stub.state.assets.get(ids.aliceAsset)?.description,
      "Alice's key for an external service",
    );

    const form = new FormData();
    form.append("name", "Biology");
    form.append("billing_day", "3");
    const response = await fetch(`${stub.url}/organisation/${ids.org}/unit`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}` },
      body: form,
    });
    assert.equal(response.status, 415);
    assert.match((await response.json()).error, /^The request body must be JSON, not "multipart/);
    assert.equal([...stub.state.assets.values()].some((a) => a.name === "key"), false);
  }));

Deno.test("the stub refuses an asset name outside API 4.4's ^[a-z0-9-]{1,63}$ with 400", () =>
  withStub(async (stub) => {
    const names = ["My Key", "a".repeat(64), "key_1", ""];
    for (const name of names) {
      const form = new FormData();
      for (const [k, v] of Object.entries({ name, scope: "USER", scope_id: "alice" })) {
        form.append(k, v);
      }
      form.append("content_string", "x");
      const response = await fetch(`${stub.url}/asset`, {
        method: "POST",
        headers: { authorization: `Bearer ${stub.tokens.alice}` },
        body: form,
      });
      assert.equal(response.status, 400, JSON.stringify(name));
      assert.match((await response.json()).error, /"name" must/);
    }
  }));

Deno.test("the seeded assets' names follow API 4.4's rule", () =>
  withStub((stub) => {
    const names = [...stub.state.assets.values()].map((a) => a.name);
    assert.deepEqual(names, ["api-key", "default-queue", "motd"]);
    for (const name of names) assert.match(name, ASSET_NAME_PATTERN);
    return Promise.resolve();
  }));

Deno.test("deno task stub prints its URL and the demo tokens, and serves them", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "stub", "--port", "0"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("Ctrl+C")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    reader.releaseLock();
    const url = /listening at (http:\/\/127\.0\.0\.1:\d+\/account-server-api)/.exec(text)?.[1];
    assert.ok(url, text);
    const token = /alice\s+(\S+)/.exec(text)?.[1];
    const response = await fetch(`${url}/user/account`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.deepEqual((await response.json()).user, { id: "alice" });
    const bob = /^ {2}bob +(\S+) +\(member of Bench Org 1-3, owns no Organisation\)$/m.exec(text);
    assert.ok(bob, text);
    const orgs = await fetch(`${url}/organisation`, {
      headers: { authorization: `Bearer ${bob[1]}` },
    });
    const names = (await orgs.json()).organisations.map((o: { name: string }) => o.name);
    assert.deepEqual(names, ["Bench Org 1", "Bench Org 2", "Bench Org 3"]);
    const columns = text.split("\n").filter((l) => / {2}(admin|alice|bob) /.test(l))
      .map((l) => l.indexOf("("));
    assert.equal(columns.length, Object.keys(SEED_USERS).length, text);
    assert.equal(new Set(columns).size, 1, `the users' descriptions start in one column:\n${text}`);
  } finally {
    child.kill("SIGINT");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
});
