/**
 * How the client behaves when things go wrong or inputs are bad: failures as ApiRv, never a
 * throw; nothing sent for bad input; TLS on and off; encoding; debug logging.
 */
import assert from "node:assert/strict";
import { AsApi, type AsApiOptions } from "../src/api/mod.ts";
import { startStub, type StubServer } from "../src/stub/mod.ts";
import { seedIds, selfSignedCertificate } from "./_helpers.ts";
import { hermeticEnv } from "./_spawn.ts";
import { loadConfig } from "../src/config.ts";

const UNIT = "unit-00000000-0000-4000-8000-0000000000ff";

async function withStub(
  fn: (stub: StubServer, api: AsApi) => Promise<void>,
  options: AsApiOptions = {},
): Promise<void> {
  const stub = await startStub();
  try {
    await fn(stub, new AsApi({ url: stub.url, env: () => undefined, ...options }));
  } finally {
    await stub.shutdown();
  }
}

Deno.test("an unknown token gets the stub's 401 as a failed ApiRv", () =>
  withStub(async (_, api) => {
    const rv = await api.call("get_account", {}, { token: "not-a-known-token" });
    assert.deepEqual(rv, {
      success: false,
      msg: { error: "Cannot get_account: 401 Unauthorized: Missing or invalid access token" },
      http_status_code: 401,
    });
  }));

Deno.test("a non-member gets 403 and an unknown id 404, each naming the operation", () =>
  withStub(async (stub, api) => {
    const ids = seedIds(stub);
    const forbidden = await api.call("get_organisation", { org_id: ids.org }, {
      token: stub.tokens.bob,
    });
    assert.equal(forbidden.http_status_code, 403);
    assert.equal(forbidden.success, false);
    assert.match(String(forbidden.msg.error), /^Cannot get_organisation: 403 Forbidden: .*member/);

    const missing = await api.call("get_unit", { unit_id: UNIT }, { token: stub.tokens.admin });
    assert.equal(missing.http_status_code, 404);
    assert.equal(
      missing.msg.error,
      `Cannot get_unit: 404 Not Found: Unit "${UNIT}" does not exist`,
    );
  }));

Deno.test("a 500 with an HTML body keeps the status and gives the page's words, not markup", () =>
  withStub(async (stub, api) => {
    stub.inject("get_version", {
      status: 500,
      contentType: "text/html",
      body: "<html><head><title>Internal error</title><style>p{}</style></head>" +
        "<body><p>Traceback</p></body></html>",
    });
    const rv = await api.call("get_version", {});
    assert.deepEqual(rv, {
      success: false,
      msg: { error: "Cannot get_version: 500 Internal Server Error: Internal error" },
      http_status_code: 500,
    });
  }));

Deno.test("a long plain-text error body is cut to a readable length", () =>
  withStub(async (stub, api) => {
    stub.inject("get_version", { status: 502, body: "upstream ".repeat(200) });
    const rv = await api.call("get_version", {});
    assert.equal(rv.http_status_code, 502);
    const error = String(rv.msg.error);
    assert.match(error, /^Cannot get_version: 502 Bad Gateway: upstream upstream/);
    assert.ok(error.length < 400 && error.endsWith("…"), error);
  }));

Deno.test("a success status with a body that is not JSON is a failure, not a crash", () =>
  withStub(async (stub, api) => {
    stub.inject("get_version", { status: 200, body: "<html>maintenance</html>" });
    const rv = await api.call("get_version", {});
    assert.equal(rv.success, false);
    assert.equal(rv.http_status_code, 200);
    assert.match(String(rv.msg.error), /not valid JSON: "<html>maintenance<\/html>"/);
  }));

Deno.test("a connection dropped mid-body gives status 0 and says so", () =>
  withStub(async (stub, api) => {
    stub.inject("get_merchants", { drop: true });
    const rv = await api.call("get_merchants", {}, { token: stub.tokens.bob });
    assert.deepEqual(rv, {
      success: false,
      msg: {
        error: "Cannot get_merchants: the connection closed before the response was complete",
      },
      http_status_code: 0,
    });
  }));

Deno.test("a refused connection gives status 0 and names the host", async () => {
  const stub = await startStub();
  const api = new AsApi({ url: stub.url, env: () => undefined });
  await stub.shutdown();
  const rv = await api.call("ping", {});
  assert.equal(rv.http_status_code, 0);
  assert.equal(rv.success, false);
  assert.match(String(rv.msg.error), /^Cannot ping: connection to "127\.0\.0\.1:\d+" refused/);
});

Deno.test("a server slower than the timeout gives status 0, and the call does not wait", () =>
  withStub(async (stub, api) => {
    stub.inject("get_version", { delayMs: 10_000 });
    const started = performance.now();
    const rv = await api.call("get_version", {}, { timeoutS: 0.3 });
    const waited = performance.now() - started;
    assert.deepEqual(rv, {
      success: false,
      msg: { error: "Cannot get_version: no response within 0.3 s (timed out)" },
      http_status_code: 0,
    });
    assert.ok(waited < 5_000, `returned after ${waited} ms, not promptly`);
    assert.equal(stub.requests.length, 1);
  }));

Deno.test("with no URL set, a call fails with status 0 and says how to set one", async () => {
  const api = new AsApi({ env: () => undefined });
  assert.deepEqual(api.getApiUrl(), { url: undefined, verifySslCert: true });
  const rv = await api.call("ping", {});
  assert.deepEqual(rv, {
    success: false,
    msg: {
      error:
        "Cannot ping: no Account Server URL is set: set SQUONK2_ASAPI_URL or call setApiUrl(url)",
    },
    http_status_code: 0,
  });
});

Deno.test("the URL and TLS setting come from SQUONK2_ASAPI_URL and _VERIFY_SSL_CERT", () => {
  const env = (values: Record<string, string>) => (name: string) => values[name];
  const url = "https://as.example.com/account-server-api/";
  assert.deepEqual(new AsApi({ env: env({ SQUONK2_ASAPI_URL: url }) }).getApiUrl(), {
    url: "https://as.example.com/account-server-api",
    verifySslCert: true,
  });
  for (const [value, verify] of [["yes", true], ["YES", true], ["no", false], ["0", false]]) {
    const api = new AsApi({
      env: env({ SQUONK2_ASAPI_URL: url, SQUONK2_ASAPI_VERIFY_SSL_CERT: String(value) }),
    });
    assert.equal(api.getApiUrl().verifySslCert, verify, `"${value}"`);
  }
});

Deno.test("SQUONK2_API_DEBUG_REQUESTS=true is refused by the client in the server's words", () => {
  const env = (name: string) => name === "SQUONK2_API_DEBUG_REQUESTS" ? "true" : undefined;
  const message = 'SQUONK2_API_DEBUG_REQUESTS must be "yes" or "no", not "true"';
  assert.throws(() => new AsApi({ url: "http://127.0.0.1:9", env }), { message });
  assert.throws(() => loadConfig([], env), { message }, "the server says the same");
});

/** Runs the client of tests/fixtures/env_client.ts with `allowEnv` and the variables `env`. */
async function clientFromEnv(
  allowEnv: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = new URL("./fixtures/env_client.ts", import.meta.url);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", `--allow-env=${allowEnv}`, script.pathname],
    env: hermeticEnv(env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

const CLIENT_VARIABLES =
  "SQUONK2_ASAPI_URL,SQUONK2_ASAPI_VERIFY_SSL_CERT,SQUONK2_API_DEBUG_REQUESTS";

Deno.test("SQUONK2_ASAPI_VERIFY_SSL_CERT=maybe turns verification off with the server's warning", async () => {
  const { code, stdout, stderr } = await clientFromEnv(CLIENT_VARIABLES, {
    SQUONK2_ASAPI_URL: "https://as.example.com/api",
    SQUONK2_ASAPI_VERIFY_SSL_CERT: "maybe",
  });
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout), { url: "https://as.example.com/api", verifySslCert: false });
  assert.equal(
    stderr,
    'SQUONK2_ASAPI_VERIFY_SSL_CERT is "maybe", not "yes": TLS certificates will NOT be verified ' +
      '(as with the Python client, anything but "yes" turns verification off; say "no" to ' +
      'mean it, or "yes" to verify)',
  );
});

Deno.test("a variable the permissions do not let the client read is reported, not taken as unset", async () => {
  const { code, stdout, stderr } = await clientFromEnv("SQUONK2_ASAPI_URL", {
    SQUONK2_ASAPI_URL: "https://as.example.com/api",
    SQUONK2_ASAPI_VERIFY_SSL_CERT: "no",
  });
  assert.notEqual(code, 0);
  assert.equal(stdout, "");
  assert.match(
    stderr,
    /SQUONK2_ASAPI_VERIFY_SSL_CERT cannot be read: this program was started without --allow-env for it \(add it to --allow-env, or give the value in AsApiOptions\)/,
  );
});

Deno.test("an unusable SQUONK2_ASAPI_URL fails each call clearly, sending nothing", async () => {
  const api = new AsApi({ env: (n) => n === "SQUONK2_ASAPI_URL" ? "ftp://x" : undefined });
  const rv = await api.call("ping", {});
  assert.equal(rv.http_status_code, 0);
  assert.equal(
    rv.msg.error,
    'Cannot ping: the Account Server URL is not usable: "ftp://x" must start with http:// or https://',
  );
});

Deno.test("setApiUrl replaces the URL at run time and refuses an unusable one", () =>
  withStub(async (stub) => {
    const api = new AsApi({ env: () => undefined });
    api.setApiUrl(`${stub.url}/`, { verifySslCert: false });
    assert.deepEqual(api.getApiUrl(), { url: stub.url, verifySslCert: false });
    assert.equal((await api.call("ping", {})).success, true);
    assert.throws(() => api.setApiUrl("not a url"), /Invalid Account Server URL: "not a url"/);
    assert.throws(() => api.setApiUrl("https://u:p@h/x"), /must not contain a user name/);
    assert.equal(api.getApiUrl().url, stub.url, "a refused URL leaves the old one in place");
  }));

Deno.test("TLS: an untrusted certificate fails clearly; with verification off it succeeds", async () => {
  const stub = await startStub(await selfSignedCertificate());
  try {
    assert.match(stub.url, /^https:/);
    const verifying = new AsApi({ url: stub.url, env: () => undefined });
    const refused = await verifying.call("get_account", {}, { token: stub.tokens.alice });
    assert.equal(refused.http_status_code, 0);
    assert.match(
      String(refused.msg.error),
      /^Cannot get_account: TLS certificate of "127\.0\.0\.1:\d+" is not trusted \(UnknownIssuer\); .*SQUONK2_ASAPI_VERIFY_SSL_CERT=no/,
    );
    assert.equal(stub.requests.length, 0, "nothing reached the server");

    const byEnv = new AsApi({
      env: (n) => ({ SQUONK2_ASAPI_URL: stub.url, SQUONK2_ASAPI_VERIFY_SSL_CERT: "no" })[n],
    });
    const rv = await byEnv.call("get_account", {}, { token: stub.tokens.alice });
    assert.equal(rv.http_status_code, 200);
    assert.deepEqual(rv.msg.user, { id: "alice" });

    verifying.setApiUrl(stub.url, { verifySslCert: false });
    const created = await verifying.call("create_unit", {
      unit_name: "Over TLS",
      org_id: seedIds(stub).org,
      billing_day: 9,
    }, { token: stub.tokens.alice });
    assert.equal(created.http_status_code, 201, JSON.stringify(created.msg));
    const got = stub.requests.at(-1)!;
    assert.deepEqual(got.body, { name: "Over TLS", billing_day: 9 });
    assert.equal(got.authorization, `Bearer ${stub.tokens.alice}`);

    verifying.setApiUrl(stub.url);
    const again = await verifying.call("ping", {});
    assert.equal(again.http_status_code, 0, "setApiUrl without the option verifies again");
  } finally {
    await stub.shutdown();
  }
});

Deno.test("TLS off: a delete answered 204 with no body, and timeouts, work the same way", async () => {
  const stub = await startStub(await selfSignedCertificate());
  try {
    const api = new AsApi({ url: stub.url, verifySslCert: false, env: () => undefined });
    const rv = await api.call("delete_personal_unit", {}, { token: stub.tokens.bob });
    assert.deepEqual(rv, { success: true, msg: {}, http_status_code: 204 });
    stub.inject("get_version", { delayMs: 10_000 });
    const slow = await api.call("ping", {}, { timeoutS: 0.2 });
    assert.deepEqual(slow.msg, { error: "Cannot ping: no response within 0.2 s (timed out)" });
  } finally {
    await stub.shutdown();
  }
});

const ORG = "org-00000000-0000-4000-8000-000000000005";
const BAD_INPUTS: [string, string, Record<string, unknown>, RegExp][] = [
  [
    "an id with the wrong prefix",
    "get_organisation",
    { org_id: UNIT },
    /org_id: must be an id like "org-"/,
  ],
  [
    "an id with uppercase hex",
    "get_unit",
    { unit_id: UNIT.toUpperCase() },
    /unit_id: must be an id/,
  ],
  ["a path-escaping id", "get_unit", { unit_id: "../organisation" }, /unit_id: must be an id/],
  ["a missing id", "get_unit", {}, /unit_id: is required/],
  [
    "billing_day 0",
    "create_personal_unit",
    { billing_day: 0 },
    /billing_day: must be an integer from 1 to 28/,
  ],
  [
    "billing_day 29",
    "create_personal_unit",
    { billing_day: 29 },
    /billing_day: must be an integer from 1 to 28/,
  ],
  [
    "billing_day 1.5",
    "create_personal_unit",
    { billing_day: 1.5 },
    /billing_day: must be an integer/,
  ],
  [
    "billing_day as text",
    "create_personal_unit",
    { billing_day: "3" },
    /billing_day: must be an integer/,
  ],
  [
    "a date in another format",
    "get_charges",
    { from: "2026/01/01" },
    /from: must be a real date written "YYYY-MM-DD"/,
  ],
  [
    "a date that does not exist",
    "get_charges",
    { until: "2026-02-30" },
    /until: must be a real date/,
  ],
  ["a positive pbp", "get_charges", { pbp: 1 }, /pbp: must be an integer from -1200 to 0/],
  ["a fractional pbp", "get_charges", { pbp: -0.5 }, /pbp: must be an integer/],
  ["merchant id 0", "get_merchant", { merchant_id: 0 }, /merchant_id: must be an integer from 1/],
  ["a negative m_id", "attach_asset", {
    asset_id: "asset-00000000-0000-4000-8000-000000000009",
    m_id: -1,
  }, /m_id: must be an integer from 1/],
  [
    "an event stream id as text",
    "delete_event_stream",
    { event_stream_id: "1" },
    /event_stream_id: must be an integer/,
  ],
  [
    "an unknown enum value",
    "create_event_stream",
    { event_format: "XML" },
    /event_format: must be one of "JSON_STRING", "PROTOCOL_STRING"/,
  ],
  [
    "a username with a slash",
    "add_user_to_organisation",
    { org_id: ORG, username: "a/b" },
    /username: must be 1-255 letters/,
  ],
  [
    "a username of two dots",
    "add_user_to_organisation",
    { org_id: ORG, username: ".." },
    /username: .*not "\." or "\.\."/,
  ],
  [
    "an unknown parameter",
    "get_version",
    { verbose: true },
    /verbose: not a parameter of get_version/,
  ],
  [
    "an empty name",
    "create_organisation",
    { org_name: "", org_owner: "bob" },
    /org_name: must not be empty/,
  ],
  ["an asset with both contents", "create_asset", {
    name: "n",
    description: "",
    scope: "USER",
    scope_id: "alice",
    content_string: "a",
    content_file: "/etc/hostname",
  }, /content_string, content_file: give exactly one of the two \(2 given\)/],
  ["an asset with no content", "create_asset", {
    name: "n",
    description: "",
    scope: "USER",
    scope_id: "alice",
  }, /give exactly one of the two \(0 given\)/],
  ["a GLOBAL asset with a scope_id", "create_asset", {
    name: "n",
    description: "",
    scope: "GLOBAL",
    scope_id: "alice",
    content_string: "a",
  }, /scope_id: must be left out when scope is "GLOBAL"/],
  ["a UNIT asset with no scope_id", "create_asset", {
    name: "n",
    description: "",
    scope: "UNIT",
    content_string: "a",
  }, /scope_id: is required when scope is "UNIT"/],
  ["an asset name with capitals and a space", "create_asset", {
    name: "My Key",
    description: "",
    scope: "USER",
    scope_id: "alice",
    content_string: "a",
  }, /name: must be 1-63 lowercase letters, digits or "-" \(API 4\.4: \^\[a-z0-9-\]\{1,63\}\$\)$/],
  ["an asset name of 64 characters", "create_asset", {
    name: "a".repeat(64),
    description: "",
    scope: "USER",
    scope_id: "alice",
    content_string: "a",
  }, /name: must be 1-63 lowercase letters/],
  ["an asset change with both contents", "alter_asset", {
    asset_id: "asset-00000000-0000-4000-8000-000000000009",
    content_string: "a",
    content_file: "/x",
  }, /give at most one of the two/],
];

for (const [what, operation, params, message] of BAD_INPUTS) {
  Deno.test(`${operation} refuses ${what} and sends nothing`, () =>
    withStub(async (stub, api) => {
      const rv = await api.callByName(operation, params, { token: stub.tokens.admin });
      assert.equal(rv.success, false);
      assert.equal(rv.http_status_code, 0);
      assert.match(String(rv.msg.error), new RegExp(`^Cannot ${operation}: invalid input: `));
      assert.match(String(rv.msg.error), message);
      assert.equal(stub.requests.length, 0);
    }));
}

Deno.test("a missing token, a bad timeout and an unknown operation are refused, sending nothing", () =>
  withStub(async (stub, api) => {
    const noToken = await api.call("get_account", {});
    assert.equal(noToken.msg.error, "Cannot get_account: no access token was given");
    const badToken = await api.call("get_account", {}, { token: "a b\r\nX-Evil: 1" });
    assert.match(String(badToken.msg.error), /access token has characters a token cannot have/);
    const badTimeout = await api.call("ping", {}, { timeoutS: -1 });
    assert.match(String(badTimeout.msg.error), /^Cannot ping: timeout_s: must be a number/);
    const unknown = await api.callByName("drop_tables", {});
    assert.equal(unknown.msg.error, 'Unknown operation "drop_tables"');
    assert.equal(stub.requests.length, 0);
  }));

Deno.test("path parameters are sent as single encoded segments", () =>
  withStub(async (stub, api) => {
    const org = seedIds(stub).org;
    stub.state.users.set("lab+o.neil@example.org", { id: "lab+o.neil@example.org", admin: false });
    const rv = await api.call("add_user_to_organisation", {
      org_id: org,
      username: "lab+o.neil@example.org",
    }, { token: stub.tokens.alice });
    assert.equal(rv.http_status_code, 201, JSON.stringify(rv.msg));
    assert.equal(stub.requests[0]!.path, `/organisation/${org}/user/lab%2Bo.neil%40example.org`);
    assert.ok(stub.state.orgs.get(org)!.members.has("lab+o.neil@example.org"));
  }));

Deno.test("get_available_assets sends a full product, unit or org id as such, else user_id", () =>
  withStub(async (stub, api) => {
    const ids = seedIds(stub);
    const cases: [string, string][] = [
      ["alice", "user_id"],
      [ids.storageProduct, "product_id"],
      [ids.unit, "unit_id"],
      [ids.org, "org_id"],
      ["org-admin", "user_id"],
      ["unit-chemistry", "user_id"],
      ["product-", "user_id"],
      [ids.org.toUpperCase(), "user_id"],
      [`${ids.unit}-x`, "user_id"],
      [ids.aliceAsset, "user_id"],
    ];
    for (const [scopeId, key] of cases) {
      const rv = await api.call("get_available_assets", { scope_id: scopeId }, {
        token: stub.tokens.alice,
      });
      assert.equal(rv.success, true);
      assert.deepEqual(stub.requests.at(-1)!.query, { [key]: scopeId });
    }
    await api.call("get_available_assets", {}, { token: stub.tokens.alice });
    assert.deepEqual(stub.requests.at(-1)!.query, {});
  }));

Deno.test("create_product sends allowance and limit only when above zero", () =>
  withStub(async (stub, api) => {
    const rv = await api.call("create_product", {
      product_name: "Project",
      unit_id: seedIds(stub).unit,
      product_type: "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION",
      flavour: "GOLD",
      allowance: 0,
      limit: 0,
    }, { token: stub.tokens.alice });
    assert.equal(rv.http_status_code, 201, JSON.stringify(rv.msg));
    assert.deepEqual(stub.requests[0]!.body, {
      name: "Project",
      type: "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION",
      flavour: "GOLD",
    });
  }));

Deno.test("create_asset sends the bytes of content_file as a multipart file part", () =>
  withStub(async (stub, api) => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/settings.json`;
      await Deno.writeTextFile(path, '{"queue": "gpu"}');
      const rv = await api.call("create_asset", {
        name: "settings",
        description: "Queue settings",
        scope: "USER",
        scope_id: "alice",
        content_file: path,
      }, { token: stub.tokens.alice });
      assert.equal(rv.http_status_code, 201, JSON.stringify(rv.msg));
      const got = stub.requests[0]!;
      assert.match(String(got.contentType), /^multipart\/form-data; boundary=/);
      assert.deepEqual(got.body, {
        name: "settings",
        scope: "USER",
        secret: "false",
        description: "Queue settings",
        scope_id: "alice",
        content_file: { filename: "settings.json", content: '{"queue": "gpu"}' },
      });
      assert.equal(stub.state.assets.get(String(rv.msg.id))?.content, '{"queue": "gpu"}');
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("an unreadable content_file is refused before anything is sent", () =>
  withStub(async (stub, api) => {
    const rv = await api.call("alter_asset", {
      asset_id: seedIds(stub).aliceAsset,
      content_file: "/nonexistent/secret.txt",
    }, { token: stub.tokens.alice });
    assert.equal(rv.http_status_code, 0);
    assert.match(
      String(rv.msg.error),
      /^Cannot alter_asset: content_file: cannot read "\/nonexistent\/secret\.txt": /,
    );
    assert.equal(stub.requests.length, 0);
  }));

Deno.test("reading content_file counts towards timeout_s: the exchange gets only what is left", () =>
  withStub(async (stub, api) => {
    // Before: the read and the exchange each had the whole timeout_s, so a call could take twice
    // as long, and a change reach the Account Server after the caller had given up.
    const slowRead = (ms: number) => async () => {
      await new Promise((r) => setTimeout(r, ms));
      return new TextEncoder().encode("content");
    };
    const params = { asset_id: seedIds(stub).aliceAsset, content_file: "notes.txt" };
    const options = { token: stub.tokens.alice, timeoutS: 0.5 };
    const late = await api.call("alter_asset", params, { ...options, readFile: slowRead(600) });
    assert.deepEqual(late, {
      success: false,
      msg: {
        error: "Cannot alter_asset: reading content_file took all of timeout_s (0.5 s); " +
          "nothing was sent",
      },
      http_status_code: 0,
    });
    assert.equal(stub.requests.length, 0);
    stub.inject("alter_asset", { delayMs: 400 });
    const slow = await api.call("alter_asset", params, { ...options, readFile: slowRead(300) });
    assert.equal(slow.http_status_code, 0);
    assert.equal(slow.msg.error, "Cannot alter_asset: no response within 0.5 s (timed out)");
  }));

Deno.test("SQUONK2_API_DEBUG_REQUESTS=yes logs method, URL, status and time, never the token", () =>
  withStub(async (stub) => {
    const script = new URL("./fixtures/debug_call.ts", import.meta.url);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net=127.0.0.1", "--allow-env", script.pathname],
      env: hermeticEnv({
        SQUONK2_ASAPI_URL: stub.url,
        SQUONK2_API_DEBUG_REQUESTS: "yes",
        TEST_TOKEN: stub.tokens.alice,
      }),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, stderr);
    assert.match(
      stderr,
      new RegExp(`\\[as-api\\] GET ${stub.url}/user/account -> 200 \\(\\d+ ms\\)`),
    );
    assert.match(stderr, /\[as-api\] GET .*\/unit\/unit-.* -> 404 \(\d+ ms\)/);
    assert.equal(stderr.includes(stub.tokens.alice), false, "the token is not logged");
    assert.equal(stdout.includes(stub.tokens.alice), false);
    assert.equal(stub.requests[0]!.authorization, `Bearer ${stub.tokens.alice}`);
  }));

/** A loopback server that counts the requests it gets: where a redirect points. */
async function withTarget(fn: (target: { url: string; hits: () => number }) => Promise<void>) {
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    hits++;
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
  try {
    await fn({ url: `http://127.0.0.1:${server.addr.port}`, hits: () => hits });
  } finally {
    await server.shutdown();
  }
}

const REDIRECTS: [number, string][] = [
  [301, "Moved Permanently"],
  [302, "Found"],
  [307, "Temporary Redirect"],
  [308, "Permanent Redirect"],
];

for (const [status, reason] of REDIRECTS) {
  Deno.test(`a ${status} is not followed: the ApiRv says where it pointed and what to set`, () =>
    withTarget((target) =>
      withStub(async (stub, api) => {
        const moved = `${target.url}/account-server-api`;
        stub.inject("get_account", {
          status,
          headers: { location: `${moved}/user/account` },
        });
        const rv = await api.call("get_account", {}, { token: stub.tokens.alice });
        assert.deepEqual(rv, {
          success: false,
          msg: {
            error: `Cannot get_account: ${status} ${reason}: the Account Server redirects to ` +
              `"${moved}/user/account", which is not followed (a redirect could carry the ` +
              "credentials elsewhere); if that address is right, the operator should set " +
              `SQUONK2_ASAPI_URL to "${moved}"`,
          },
          http_status_code: status,
        });
        assert.equal(stub.requests.length, 1);
        assert.equal(target.hits(), 0, "the redirect target received no request");
      })
    ));
}

Deno.test("a redirect elsewhere keeps its query out of the suggested URL or names no URL", () =>
  withTarget((target) =>
    withStub(async (stub, api) => {
      stub.inject("get_units", {
        status: 302,
        headers: { location: `${target.url}/v2/unit?name=Chemistry` },
      });
      const found = await api.call("get_units", { unit_name: "Chemistry" }, {
        token: stub.tokens.alice,
      });
      assert.match(
        String(found.msg.error),
        new RegExp(`set SQUONK2_ASAPI_URL to "${target.url}/v2"$`),
      );
      stub.inject("get_units", { status: 301, headers: { location: "/login" } });
      const login = await api.call("get_units", { unit_name: "Chemistry" }, {
        token: stub.tokens.alice,
      });
      assert.match(
        String(login.msg.error),
        new RegExp(
          `redirects to "${stub.origin}/login", .*set SQUONK2_ASAPI_URL to the Account Server's address there$`,
        ),
      );
      assert.equal(target.hits(), 0);
    })
  ));

Deno.test("TLS off: a redirect is not followed either, and says where it pointed", async () => {
  const stub = await startStub(await selfSignedCertificate());
  try {
    await withTarget(async (target) => {
      const api = new AsApi({ url: stub.url, verifySslCert: false, env: () => undefined });
      stub.inject("get_account", {
        status: 308,
        headers: { location: `${target.url}/account-server-api/user/account` },
      });
      const rv = await api.call("get_account", {}, { token: stub.tokens.alice });
      assert.equal(rv.http_status_code, 308);
      assert.match(
        String(rv.msg.error),
        new RegExp(
          `^Cannot get_account: 308 Permanent Redirect: the Account Server redirects to "${target.url}/account-server-api/user/account", which is not followed .*set SQUONK2_ASAPI_URL to "${target.url}/account-server-api"$`,
        ),
      );
      assert.equal(stub.requests.length, 1);
      assert.equal(target.hits(), 0, "the redirect target received no request");
    });
  } finally {
    await stub.shutdown();
  }
});
