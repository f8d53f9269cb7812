/**
 * Attacks through `content_file`, over real HTTP: a file past the size limit (sparse or not), a
 * FIFO swapped in, a symbolic link swapped in between the check and the read. Nothing outside
 * the folder, and nothing past the limit, reaches the Account Server, and no call hangs.
 */
import assert from "node:assert/strict";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { checkFileRoot, type ServerOptions } from "../src/mcp/mod.ts";
import type { StubServer } from "../src/stub/mod.ts";
import { seedIds } from "./_helpers.ts";
import { openEndpoint } from "../testing/mod.ts";

const SECRET = "root:x:0:0:must-not-leave-this-machine";

interface Rig {
  stub: StubServer;
  root: string;
  call(args: Record<string, unknown>): Promise<CallToolResult>;
}

async function withRig(fn: (rig: Rig) => Promise<void>, server: Partial<ServerOptions> = {}) {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const root = `${base}/uploads`;
  await Deno.mkdir(root);
  await Deno.writeTextFile(`${base}/passwd`, SECRET);
  try {
    await using http = await openEndpoint({ server: { fileRoot: checkFileRoot(root), ...server } });
    const { stub } = http;
    const client = await http.connect(stub.tokens.alice);
    const asset = seedIds(stub).aliceAsset;
    await fn({
      stub,
      root,
      call: async (args) =>
        await client.callTool({
          name: "alter_asset",
          arguments: { asset_id: asset, ...args },
        }) as CallToolResult,
    });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

function errorOf(result: CallToolResult): string {
  return String((result.structuredContent as { msg: { error?: unknown } }).msg.error);
}

function sentContents(stub: StubServer): string[] {
  return stub.requests.map((r) => JSON.stringify(r.body));
}

Deno.test("a file past SQUONK2_MCP_MAX_UPLOAD_BYTES is refused and nothing is sent", () =>
  withRig(async ({ call, stub, root }) => {
    await Deno.writeTextFile(`${root}/big.txt`, "é".repeat(600));
    const result = await call({ content_file: "big.txt" });
    assert.equal(
      errorOf(result),
      'Cannot alter_asset: content_file: "big.txt" is larger than 1000 bytes',
    );
    assert.deepEqual(stub.requests, []);
    await Deno.writeTextFile(`${root}/small.txt`, "é".repeat(500));
    assert.equal((await call({ content_file: "small.txt" })).isError, false);
  }, { maxUploadBytes: 1000 }));

Deno.test("a 64 MiB sparse file is refused at once by the default 1 MiB limit", () =>
  withRig(async ({ call, stub, root }) => {
    // Before: the whole file was read into memory and sent.
    const file = await Deno.open(`${root}/sparse.bin`, { create: true, write: true });
    await file.truncate(64 * 1024 * 1024);
    file.close();
    const result = await call({ content_file: "sparse.bin" });
    assert.equal(
      errorOf(result),
      'Cannot alter_asset: content_file: "sparse.bin" is larger than 1048576 bytes',
    );
    assert.deepEqual(stub.requests, []);
  }));

/** Swaps `path` between a regular file and `swapIn` until `stop` is set. */
async function keepSwapping(path: string, swapIn: () => Promise<void>, stop: { done: boolean }) {
  while (!stop.done) {
    await Deno.writeTextFile(`${path}.file`, "harmless");
    await Deno.rename(`${path}.file`, path);
    await swapIn();
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** Runs `fn` while another process keeps swapping `path` for a link to `target` and back. */
async function whileSwapped(
  kind: "file" | "folder",
  path: string,
  target: string,
  fn: () => Promise<void>,
) {
  const swapper = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", swapperScript, kind, path, target],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    // Wait until the swapping has begun.
    while (!(await Deno.lstat(path).catch(() => undefined))?.isSymlink) {
      await new Promise((r) => setTimeout(r, 1));
    }
    await fn();
  } finally {
    swapper.kill();
    const { signal, stderr } = await swapper.output();
    assert.equal(
      signal,
      "SIGTERM",
      `the swapper stopped early: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

const swapperScript = new URL("./_swapper.ts", import.meta.url).pathname;

function leaksIn(stub: StubServer): number {
  return sentContents(stub).filter((body) => body.includes("must-not-leave")).length;
}

Deno.test("a symbolic link to an outside file swapped in by another process never leaves", () =>
  withRig(async ({ call, stub, root }) => {
    // Before: 1 call in 300 sent the outside file (the path was checked again after the open,
    // and that second check could itself be raced).
    const path = `${root}/notes.txt`;
    const refusals = new Set<string>();
    await whileSwapped("file", path, `${root}/../passwd`, async () => {
      for (let i = 0; i < 400; i++) {
        const result = await call({ content_file: "notes.txt" });
        if (result.isError) refusals.add(errorOf(result).replace(/"[^"]*"/g, "_"));
      }
    });
    assert.equal(leaksIn(stub), 0, `${leaksIn(stub)} of 400 calls sent the outside file`);
    assert.ok(refusals.size > 0, "the swapped-in link was seen, and refused");
    await Deno.remove(path);
    await Deno.writeTextFile(path, "harmless");
    const settled = await call({ content_file: "notes.txt" });
    assert.equal(settled.isError, false, "once the swapping stops, the regular file goes through");
  }));

Deno.test("a subfolder others can swap for a link is refused; the folder's own files still go", () =>
  withRig(async ({ call, stub, root }) => {
    // The attack: rename a subfolder away and put a link to an outside folder in its place,
    // between the check of "drop/notes.txt" and its open. Only folders that nobody but their
    // owner can change are trusted to hold subfolders.
    await Deno.mkdir(`${root}/drop`);
    await Deno.writeTextFile(`${root}/drop/notes.txt`, "harmless");
    await Deno.writeTextFile(`${root}/notes.txt`, "harmless");
    await Deno.mkdir(`${root}/../outside`);
    await Deno.writeTextFile(`${root}/../outside/notes.txt`, SECRET);
    await Deno.chmod(root, 0o775);
    const answers = new Set<string>();
    await whileSwapped("folder", `${root}/drop`, `${root}/../outside`, async () => {
      for (let i = 0; i < 200; i++) {
        const result = await call({ content_file: "drop/notes.txt" });
        answers.add(result.isError ? errorOf(result).replace(/"[^"]*"/g, "_") : "sent");
      }
    });
    assert.equal(leaksIn(stub), 0, `${leaksIn(stub)} of 200 calls sent the outside file`);
    assert.ok(!answers.has("sent"), [...answers].join("\n"));
    if (await Deno.lstat(`${root}/drop.real`).catch(() => undefined)) {
      // The swapper was stopped halfway: put the real folder back.
      await Deno.remove(`${root}/drop`).catch(() => {});
      await Deno.rename(`${root}/drop.real`, `${root}/drop`);
    }
    assert.equal(
      errorOf(await call({ content_file: "drop/notes.txt" })),
      'Cannot alter_asset: content_file: "drop/notes.txt" is in a subfolder that others could ' +
        "swap for a link: the upload folder is writable by its group or by others; put the file " +
        "directly in the upload folder, or let only the server's user write to the folders on " +
        "its way",
    );
    assert.equal((await call({ content_file: "notes.txt" })).isError, false);
    await Deno.chmod(root, 0o755);
    await Deno.chmod(`${root}/drop`, 0o755);
    assert.equal((await call({ content_file: "drop/notes.txt" })).isError, false);
  }));

Deno.test("a FIFO swapped in is refused at once instead of hanging the call", () =>
  withRig(async ({ call, root }) => {
    const path = `${root}/notes.txt`;
    const fifo = `${root}/../fifo`;
    const stop = { done: false };
    const swapping = keepSwapping(path, async () => {
      const made = await new Deno.Command("mkfifo", { args: [`${fifo}.new`] }).output();
      assert.equal(made.code, 0);
      await Deno.rename(`${fifo}.new`, path);
    }, stop);
    const answers: string[] = [];
    try {
      for (let i = 0; i < 200; i++) {
        // Before: a read of a FIFO with no writer never returned, whatever timeout_s said.
        const result = await Promise.race([
          call({ content_file: "notes.txt", timeout_s: 2 }),
          new Promise<"hung">((r) => setTimeout(() => r("hung"), 5_000)),
        ]);
        assert.notEqual(result, "hung", `call ${i} hung`);
        answers.push(errorOf(result as CallToolResult));
      }
    } finally {
      stop.done = true;
      await swapping;
    }
    assert.ok(answers.some((a) => /is not a regular file/.test(a)), "FIFOs were seen, refused");
  }));
