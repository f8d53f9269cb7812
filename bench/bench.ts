/**
 * `deno task bench`: measures, side by side in one run, what the project costs on top of what it
 * wraps, and writes the figures into BENCHMARKS.md (between its markers, keeping the notes):
 *
 * - a client call vs a raw `fetch` of the same stub URL;
 * - a tool call through MCP in memory and over stdio vs the direct client call;
 * - cold start: process spawn to the first `tools/list` answer over stdio;
 * - context cost: the `tools/list` payload in bytes and tokens (js-tiktoken cl100k_base), for
 *   all tools and each toolset, against the listing the SDK would make from the same schemas;
 * - load over HTTP (bench/load.ts).
 *
 * Everything runs against the stub on 127.0.0.1.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { getEncoding } from "js-tiktoken";
import { z } from "zod";
import { AsApi, OPERATIONS, TOOLSETS } from "../src/api/mod.ts";
import { createServer, selectTools } from "../src/mcp/mod.ts";
import { annotationsFor } from "../src/mcp/tool.ts";
import { API_RV_SHAPE } from "../src/mcp/listing.ts";
import { NoCredentials, StaticToken } from "../src/auth/mod.ts";
import { startStub } from "../src/stub/mod.ts";
import { coldStart, interleave, median, quantile } from "./_measure.ts";
import { runLoad } from "./load.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const encoder = getEncoding("cl100k_base");
const tokensOf = (value: unknown) => encoder.encode(JSON.stringify(value)).length;
const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;
const fixed = (n: number, digits = 2) => n.toFixed(digits);

function startArgs(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const task: string = config.tasks.start;
  return task.replace(/^deno run /, "").replace("--env-file ", "").split(" ");
}

async function inMemoryClient(server: McpServer): Promise<Client> {
  const client = new Client({ name: "bench", version: "1.0.0" });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(b), client.connect(a)]);
  return client;
}

async function callOverhead(): Promise<string[]> {
  const stub = await startStub();
  const token = stub.tokens.alice;
  const api = new AsApi({ url: stub.url, env: () => undefined });
  const url = `${stub.url}/user/account`;
  const headers = { authorization: `Bearer ${token}`, accept: "application/json" };

  const inMemory = await inMemoryClient(
    createServer({ api, tokens: new StaticToken(token), version: "bench" }),
  );
  // The SDK's own floor: one bare tool that calls the client and returns its ApiRv.
  const bare = new McpServer({ name: "bare", version: "1" });
  bare.registerTool("get_account", { description: "bare", inputSchema: {} }, async () => {
    const rv = await api.call("get_account", {}, { token });
    return { content: [{ type: "text", text: JSON.stringify(rv) }], structuredContent: { ...rv } };
  });
  const bareClient = await inMemoryClient(bare);
  const stdio = new Client({ name: "bench", version: "1.0.0" });
  await stdio.connect(
    new StdioClientTransport({
      command: Deno.execPath(),
      // Through the task: Deno's node:child_process reads `deno run` flags as Node's.
      args: ["task", "-q", "start"],
      cwd: ROOT,
      env: { SQUONK2_ASAPI_URL: stub.url, SQUONK2_ASAPI_TOKEN: token, NO_COLOR: "1" },
      stderr: "ignore",
    }),
  );
  const call = { name: "get_account", arguments: {} };
  const times = await interleave({
    "raw fetch": async () => await (await fetch(url, { headers })).json(),
    "client call": () => api.call("get_account", {}, { token }),
    "MCP in memory": () => inMemory.callTool(call),
    "bare SDK tool in memory": () => bareClient.callTool(call),
    "MCP over stdio": () => stdio.callTool(call),
  }, { warmup: 200, rounds: 12, perRound: 50 });
  await inMemory.close();
  await bareClient.close();
  await stdio.close();
  await stub.shutdown();

  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const row = (name: string, base: string, target: string) => {
    const t = times[name]!;
    return `| ${name} | ${fixed(m[name]! * 1000, 0)} | ${fixed(quantile(t, 0.95) * 1000, 0)} | ` +
      `${base} | ${fixed(m[name]! / m[base]!)}× | ${target} |`;
  };
  const added = m["MCP over stdio"]! - m["client call"]!;
  return [
    "### Call overhead (`get_account` against the stub, 600 calls each, interleaved)",
    "",
    "| Path | median µs | p95 µs | against | ratio | target |",
    "| --- | --- | --- | --- | --- | --- |",
    row("raw fetch", "raw fetch", "baseline"),
    row("client call", "raw fetch", "≤ 1.15×"),
    row("MCP in memory", "client call", "≤ 1.5×"),
    row("bare SDK tool in memory", "client call", "(the SDK's floor)"),
    row("MCP over stdio", "client call", "≤ 0.5 ms added"),
    "",
    `Over stdio, MCP adds ${fixed(added, 3)} ms per call to the direct client call ` +
    `(target ≤ 0.5 ms).`,
  ];
}

async function coldStarts(): Promise<string[]> {
  const stub = await startStub();
  const env = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    SQUONK2_ASAPI_URL: stub.url,
    SQUONK2_ASAPI_TOKEN: stub.tokens.alice,
    NO_COLOR: "1",
  };
  const runs = 10;
  const measure = async (command: string, args: string[]) => {
    await coldStart(command, args, env, ROOT); // warms Deno's caches
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push((await coldStart(command, args, env, ROOT)).ms);
    return times;
  };
  const contenders: [string, string, string[]][] = [
    ["`deno task start`", Deno.execPath(), ["task", "-q", "start"]],
    ["`deno run` (the task's command)", Deno.execPath(), ["run", ...startArgs()]],
  ];
  const binary = `${ROOT}dist/squonk2-as-mcp`;
  const hasBinary = await Deno.stat(binary).then(() => true, () => false);
  if (hasBinary) contenders.push(["compiled binary", binary, []]);
  const rows = [];
  let baseline = NaN;
  for (const [name, command, args] of contenders) {
    const times = await measure(command, args);
    if (Number.isNaN(baseline)) baseline = median(times);
    rows.push(
      `| ${name} | ${fixed(median(times), 0)} | ${fixed(Math.min(...times), 0)} | ` +
        `${fixed(Math.max(...times), 0)} | ${fixed(median(times) / baseline)}× |`,
    );
  }
  await stub.shutdown();
  return [
    `### Cold start (spawn to the first \`tools/list\` answer over stdio, ${runs} runs, warm cache)`,
    "",
    "| Command | median ms | min ms | max ms | against `deno task start` |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "Target: median ≤ 300 ms.",
    ...(hasBinary ? [] : [
      "",
      "The compiled binary was not measured: `dist/squonk2-as-mcp` does not exist (see the " +
      "README: `deno task compile` needs Deno's `denort` runtime, which this machine cannot " +
      "download).",
    ]),
  ];
}

/** The listing the SDK itself would send for the same tools: every schema converted in full. */
function sdkListing(names: Set<string>): unknown {
  const full = (shape: z.ZodRawShape) =>
    z.toJSONSchema(z.object(shape), { target: "draft-7", io: "input" });
  const timeout = z.number().min(0.1).max(60).describe(
    "Seconds to wait for the Account Server (default 4)",
  ).optional();
  return {
    tools: OPERATIONS.filter((o) => names.has(o.name)).map((o) => ({
      name: o.name,
      title: o.title,
      description: o.description,
      inputSchema: full({ ...o.params, timeout_s: timeout }),
      outputSchema: z.toJSONSchema(z.object(API_RV_SHAPE), { target: "draft-7", io: "output" }),
      annotations: annotationsFor(o.kind, o.title),
      execution: { taskSupport: "forbidden" },
    })),
  };
}

async function contextCost(): Promise<string[]> {
  const listFor = async (tools: string[]) => {
    const client = await inMemoryClient(
      createServer({
        api: new AsApi({ url: "http://127.0.0.1:9", env: () => undefined }),
        tokens: new NoCredentials(),
        version: "bench",
        tools,
      }),
    );
    const listing = await client.listTools();
    await client.close();
    return listing;
  };
  const rows = [];
  for (const set of ["all", ...TOOLSETS]) {
    const tools = selectTools({ toolsets: [set] });
    const listing = await listFor(tools);
    const baseline = sdkListing(new Set(tools));
    const tokens = tokensOf(listing);
    rows.push(
      `| ${set} | ${tools.length} | ${bytesOf(listing)} | ${tokens} | ` +
        `${fixed(tokens / tools.length, 0)} | ${tokensOf(baseline)} | ` +
        `${fixed(tokens / tokensOf(baseline))}× |`,
    );
  }
  return [
    "### Context cost (`tools/list` payload; tokens by js-tiktoken cl100k_base)",
    "",
    "| Toolset | tools | bytes | tokens | tokens/tool | SDK's own listing, tokens | ratio |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    'Target: all tools ≤ 8,000 tokens (about 150 a tool). "SDK\'s own listing" is what the ' +
    "SDK would send for the same tools (every zod schema converted in full, one output schema " +
    "per tool), computed in the same run.",
  ];
}

async function load(): Promise<string[]> {
  const r = await runLoad(50, 20);
  return [
    "### Load over HTTP (bench/load.ts)",
    "",
    `${r.sessions} concurrent sessions, each with its own token, ${r.callsPerSession} calls each ` +
    `(\`get_account\` against the stub): ${r.calls} calls in ${fixed(r.seconds)} s.`,
    "",
    "| calls/s | p50 ms | p95 ms | failures | cross-session leaks | heap before MB | heap peak MB | heap after MB | after / before |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    `| ${fixed(r.callsPerSecond, 0)} | ${fixed(r.p50Ms, 1)} | ${fixed(r.p95Ms, 1)} | ` +
    `${r.failures} | ${r.leaks} | ${fixed(r.heapBeforeMb, 1)} | ${fixed(r.heapPeakMb, 1)} | ` +
    `${fixed(r.heapAfterMb, 1)} | ${fixed(r.heapAfterMb / r.heapBeforeMb)}× |`,
  ];
}

function machine(): string[] {
  const memory = Deno.systemMemoryInfo();
  return [
    `Measured on ${new Date().toISOString().slice(0, 10)}: ${Deno.build.os} ${Deno.build.arch}, ` +
    `${navigator.hardwareConcurrency} cores, ${fixed(memory.total / 1024 ** 3, 0)} GiB, ` +
    `Deno ${Deno.version.deno}.`,
  ];
}

if (import.meta.main) {
  const sections = [machine(), await callOverhead(), await coldStarts(), await contextCost()];
  sections.push(await load());
  const text = sections.map((s) => s.join("\n")).join("\n\n");
  console.log(text);
  const path = `${ROOT}BENCHMARKS.md`;
  const current = await Deno.readTextFile(path).catch(() => "");
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  const next = from >= 0 && to > from
    ? `${current.slice(0, from + start.length)}\n${text}\n${current.slice(to)}`
    : `# Benchmarks\n\n${start}\n${text}\n${end}\n`;
  await Deno.writeTextFile(path, next);
}
