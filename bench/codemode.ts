/**
 * `deno task codemode-bench`: five multi-step account tasks on the stub's sample data (plus a few
 * seeded Organisations, Units, Products and attachments), each done two ways on a fresh stub:
 * the tool calls an assistant would make one by one, and one `run_program`. For each: round
 * trips, bytes and cl100k tokens through the model's context (arguments plus results), wall time.
 * Both ways must give the same answer; the benchmark stops if they do not. Figures go into
 * BENCHMARKS.md between the code mode markers.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { getEncoding } from "js-tiktoken";
import { AsApi } from "../src/api/mod.ts";
import { createServer, selectTools } from "../src/mcp/mod.ts";
import { StaticToken } from "../src/auth/mod.ts";
import { startStub } from "../src/stub/mod.ts";
import { median } from "./_measure.ts";
import { TASKS } from "./_codemode_tasks.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const encoder = getEncoding("cl100k_base");
const utf8 = new TextEncoder();

/** One way of doing a task, measured. */
interface Measured {
  answer: unknown;
  trips: number;
  bytes: number;
  tokens: number;
  ms: number;
}

/** A fresh stub with the bench data and an in-memory session with code mode on, as admin. */
async function session(): Promise<{ client: Client; close(): Promise<void> }> {
  const stub = await startStub({ demoData: true });
  const server = createServer({
    api: new AsApi({ url: stub.url, env: () => undefined }),
    tokens: new StaticToken(stub.tokens.admin),
    version: "bench",
    tools: selectTools({ codeMode: true }),
  });
  const client = new Client({ name: "bench", version: "1.0.0" });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  return {
    client,
    close: async () => {
      await client.close();
      await server.close();
      await stub.shutdown();
    },
  };
}

/** A tool caller that counts what passes through the model's context. */
function metered(client: Client) {
  const meter = { trips: 0, bytes: 0, tokens: 0 };
  const count = (text: string) => {
    meter.bytes += utf8.encode(text).length;
    meter.tokens += encoder.encode(text).length;
  };
  const call = async (name: string, args: Record<string, unknown> = {}) => {
    meter.trips++;
    count(JSON.stringify({ name, arguments: args }));
    const result = await client.callTool({ name, arguments: args }) as CallToolResult;
    const text = (result.content[0] as { text: string }).text;
    count(text);
    // deno-lint-ignore no-explicit-any -- a tool's msg is whatever JSON the AS answered
    return JSON.parse(text).msg as any;
  };
  return { meter, call };
}

/** One way of one task on a fresh session. */
async function measure(
  work: (call: ReturnType<typeof metered>["call"]) => Promise<unknown>,
): Promise<Measured> {
  const { client, close } = await session();
  try {
    const { meter, call } = metered(client);
    const started = performance.now();
    const answer = await work(call);
    return { answer, ...meter, ms: performance.now() - started };
  } finally {
    await close();
  }
}

/** The median-time run of `runs` runs (the answers must all agree). */
async function best(
  work: (call: ReturnType<typeof metered>["call"]) => Promise<unknown>,
  runs: number,
): Promise<Measured> {
  const all: Measured[] = [];
  for (let i = 0; i < runs; i++) all.push(await measure(work));
  const ms = median(all.map((m) => m.ms));
  return { ...all[0]!, ms };
}

/** cl100k tokens of run_program's listing and of the whole tools/list, with code mode on. */
async function listingCost(): Promise<{ program: number; all: number }> {
  const { client, close } = await session();
  try {
    const { tools } = await client.listTools();
    const program = tools.find((t: { name: string }) => t.name === "run_program");
    return {
      program: encoder.encode(JSON.stringify(program)).length,
      all: encoder.encode(JSON.stringify({ tools })).length,
    };
  } finally {
    await close();
  }
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const task of TASKS) {
    const tools = await best(task.tools, 5);
    const program = await best(async (call) => {
      const msg = await call("run_program", { program: task.program });
      if (!("value" in msg)) throw new Error(`${task.name}: ${msg.error}`);
      return msg.value;
    }, 5);
    assert.deepEqual(program.answer, tools.answer, `${task.name}: the two ways disagree`);
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    rows.push(
      `| ${task.name} | ${tools.trips} / ${program.trips} | ${tools.bytes} / ${program.bytes} | ` +
        `${tools.tokens} / ${program.tokens} (${ratio(program.tokens, tools.tokens)}) | ` +
        `${tools.ms.toFixed(0)} / ${program.ms.toFixed(0)} | same |`,
    );
  }
  const listed = await listingCost();
  const text = [
    `Measured on ${new Date().toISOString().slice(0, 10)}: ${Deno.build.os} ${Deno.build.arch}, ` +
    `Deno ${Deno.version.deno}; in memory against the stub, median of 5 runs on fresh stubs.`,
    "",
    "| Task | round trips (tools / program) | bytes (tools / program) | cl100k tokens (tools / program, ratio) | wall ms (tools / program) | answers |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    `The typed API of \`as\` lives in run_program's description: with every operation offered, ` +
    `run_program's listing is ${listed.program} tokens, against ${listed.all} for the whole ` +
    "tools/list with code mode on. Wall time here has no model in it: each tool-call round " +
    "trip would also cost a model turn, and a program pays for starting its sandbox process.",
  ].join("\n");
  console.log(text);
  const path = `${ROOT}BENCHMARKS.md`;
  const current = await Deno.readTextFile(path);
  const start = "<!-- codemode:start -->";
  const end = "<!-- codemode:end -->";
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  const next = from >= 0 && to > from
    ? `${current.slice(0, from + start.length)}\n${text}\n${current.slice(to)}`
    : `${current.trimEnd()}\n\n## Code mode (bench/codemode.ts)\n\n${start}\n${text}\n${end}\n`;
  await Deno.writeTextFile(path, next);
}

if (import.meta.main) await main();
