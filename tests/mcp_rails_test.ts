/**
 * The safety rails, through the SDK's Client in memory: the upload folder, confirmation of
 * deletes by elicitation, and hidden characters stripped from Account Server text. The functions
 * behind them are tested on their own in sanitize_test.ts and selection_test.ts.
 */
import assert from "node:assert/strict";
import { type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { checkFileRoot } from "../src/mcp/mod.ts";
import { seedIds } from "./_helpers.ts";
import { openSession, type Session } from "../testing/mod.ts";

type Answer = { action: "accept" | "decline" | "cancel"; content?: Record<string, unknown> };

async function withRig(
  fn: (rig: Session) => Promise<void>,
  options: { fileRoot?: string; answer?: Answer } = {},
): Promise<void> {
  await using session = await openSession(options);
  await fn(session);
}

function errorOf(result: CallToolResult): string {
  return String((result.structuredContent as { msg: { error?: string } }).msg.error);
}

async function withFolders(
  fn: (root: string, outside: string) => Promise<void>,
): Promise<void> {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    const root = `${base}/uploads`;
    const outside = `${base}/private`;
    await Deno.mkdir(`${root}/sub`, { recursive: true });
    // Subfolders are read only where no one but the owner can write (whatever the umask).
    await Deno.chmod(root, 0o755);
    await Deno.mkdir(outside);
    await Deno.writeTextFile(`${root}/sub/settings.txt`, "inside");
    await Deno.writeTextFile(`${outside}/secret.txt`, "must not leave this machine");
    await Deno.symlink(`${outside}/secret.txt`, `${root}/link-out.txt`);
    await Deno.symlink(outside, `${root}/dir-out`);
    await fn(root, outside);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("content_file reads a file inside the upload folder, by relative or absolute path", () =>
  withFolders((root) =>
    withRig(async ({ call, stub }) => {
      const asset = seedIds(stub).aliceAsset;
      for (const path of ["sub/settings.txt", `${root}/sub/settings.txt`]) {
        const result = await call("alter_asset", { asset_id: asset, content_file: path });
        assert.equal(result.isError, false, errorOf(result));
        assert.deepEqual((stub.requests.at(-1)!.body as Record<string, unknown>).content_file, {
          filename: "settings.txt",
          content: "inside",
        });
      }
      assert.equal(stub.state.assets.get(asset)?.content, "inside");
    }, { fileRoot: checkFileRoot(root) })
  ));

Deno.test("content_file paths that lead out of the upload folder are refused, sending nothing", () =>
  withFolders((root, outside) =>
    withRig(async ({ call, stub }) => {
      const asset = seedIds(stub).aliceAsset;
      const cases: [string, RegExp][] = [
        ["../private/secret.txt", /outside the upload folder/],
        [`${outside}/secret.txt`, /outside the upload folder/],
        ["sub/../../private/secret.txt", /outside the upload folder/],
        ["link-out.txt", /outside the upload folder/],
        ["dir-out/secret.txt", /outside the upload folder/],
        ["missing.txt", /does not exist in the upload folder/],
        ["sub", /is not a regular file/],
      ];
      for (const [path, message] of cases) {
        const result = await call("alter_asset", { asset_id: asset, content_file: path });
        assert.equal(result.isError, true, path);
        assert.match(errorOf(result), /^Cannot alter_asset: content_file: /);
        assert.match(errorOf(result), message, path);
      }
      assert.equal(stub.requests.length, 0);
    }, { fileRoot: checkFileRoot(root) })
  ));

Deno.test("with no upload folder, content_file is refused and content_string still works", () =>
  withRig(async ({ call, stub }) => {
    const asset = seedIds(stub).aliceAsset;
    const refused = await call("alter_asset", { asset_id: asset, content_file: "/etc/hostname" });
    assert.match(errorOf(refused), /file uploads are disabled: .*SQUONK2_MCP_FILE_ROOT/);
    assert.equal(stub.requests.length, 0);
    const ok = await call("alter_asset", { asset_id: asset, content_string: "fine" });
    assert.equal(ok.isError, false);
  }));

Deno.test("a path outside the upload folder as written is refused alike, existing or not", () =>
  withFolders((root) =>
    withRig(async ({ call, stub }) => {
      // Before: "/etc/passwd" was "outside" but "/etc/nothing-here" "does not exist", telling the
      // caller which files exist anywhere on the machine.
      const asset = seedIds(stub).aliceAsset;
      for (const path of ["/etc/passwd", "/etc/nothing-here", "../../nothing/here"]) {
        const result = await call("alter_asset", { asset_id: asset, content_file: path });
        assert.equal(
          errorOf(result),
          `Cannot alter_asset: content_file: "${path}" is outside the upload folder`,
        );
      }
      assert.equal(stub.requests.length, 0);
    }, { fileRoot: checkFileRoot(root) })
  ));

Deno.test("an upload folder others could swap for a link is refused at start", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${base}/shared/uploads`, { recursive: true });
    await Deno.chmod(`${base}/shared`, 0o775);
    assert.throws(
      () => checkFileRoot(`${base}/shared/uploads`),
      (error: Error) =>
        error.message ===
          `SQUONK2_MCP_FILE_ROOT "${base}/shared/uploads" cannot be used: "${base}/shared" is ` +
            `writable by its group or by others, who could swap "${base}/shared/uploads" for a ` +
            "link; choose a folder that only this server's user (or root) can change, all the way up",
    );
    // Shared with the sticky bit, like /tmp, only the owner of "uploads" may rename it.
    await Deno.chmod(`${base}/shared`, 0o1777);
    assert.equal(checkFileRoot(`${base}/shared/uploads`), `${base}/shared/uploads`);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("an upload folder that is missing or a file is refused at start", () => {
  assert.throws(() => checkFileRoot("/nonexistent/uploads"), /cannot be used/);
  assert.throws(() => checkFileRoot(Deno.execPath()), /is not a directory/);
});

Deno.test("a delete asks the user first, naming the target, and goes ahead when accepted", () =>
  withRig(async ({ call, stub, asked }) => {
    const unit = stub.state.addUnit(seedIds(stub).org, "Old", 1, "alice", "alice").id;
    const result = await call("delete_unit", { unit_id: unit });
    assert.equal(result.isError, false, errorOf(result));
    assert.equal(asked.length, 1);
    assert.match(asked[0]!, new RegExp(`Delete unit: unit "${unit}"\\. This cannot be undone`));
    assert.equal(stub.state.units.has(unit), false);
  }, { answer: { action: "accept", content: { confirm: true } } }));

for (
  const answer of [
    { action: "decline" },
    { action: "cancel" },
    { action: "accept", content: { confirm: false } },
  ] as Answer[]
) {
  Deno.test(`a delete answered ${JSON.stringify(answer)} sends nothing`, () =>
    withRig(async ({ call, stub, asked }) => {
      const ids = seedIds(stub);
      const result = await call("remove_user_from_organisation", {
        org_id: ids.org,
        username: "alice",
      });
      assert.equal(result.isError, true);
      assert.match(errorOf(result), /the user did not confirm; nothing was sent/);
      assert.match(asked[0]!, /Remove user from organisation: org ".*", username "alice"/);
      assert.equal(stub.requests.length, 0);
      assert.ok(stub.state.orgs.get(ids.org)!.members.has("alice"));
    }, { answer }));
}

Deno.test("a client without elicitation is not asked, and writes that are not deletes never are", () =>
  withRig(async ({ call, stub }) => {
    const result = await call("delete_event_stream", { event_stream_id: 2 });
    assert.equal(result.isError, false, errorOf(result));
    assert.equal(stub.requests.length, 1);
  }));

Deno.test("only deletes ask: a create with elicitation support goes straight through", () =>
  withRig(async ({ call, asked }) => {
    const result = await call("create_personal_unit", { billing_day: 2 });
    assert.equal(result.isError, true, "alice has a personal unit already");
    assert.equal(asked.length, 0);
  }, { answer: { action: "decline" } }));

Deno.test("hidden and control characters from the Account Server never reach the model", () =>
  withRig(async ({ call, stub }) => {
    const asset = stub.state.assets.get(seedIds(stub).aliceAsset)!;
    asset.description = "Key\u200B for\u202E evil\u2066 \u0007svc\u{E0041}\u00AD";
    asset.content = "line one\nline\ttwo\u0000\uFEFF";
    const result = await call("get_asset", { asset_id: asset.id });
    const msg = (result.structuredContent as { msg: Record<string, string> }).msg;
    assert.equal(msg.description, "Key for evil svc");
    assert.equal(msg.content, "line one\nline\ttwo");
    assert.equal(
      JSON.parse((result.content[0] as { text: string }).text).msg.description,
      "Key for evil svc",
    );
  }));
