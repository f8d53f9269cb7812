/**
 * Honest callers under attack: 20 SDK sessions keep calling `get_account` while attackers send
 * hostile requests (bodies declared at 400 MB, 8 MiB chunked bodies with no length, bodies and
 * headers that trickle in, forged tokens on other callers' session ids). The same honest load
 * runs once without the attack; both runs report honest failures and latency percentiles. The
 * server (with the stub) runs in a process of its own, the attackers in a worker.
 *
 * `deno task bench:hostile [seconds]`; not a unit test.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { startStub } from "../src/stub/mod.ts";
import { serveForStub } from "../testing/mod.ts";
import { quantile, time } from "./_measure.ts";

/** One run's honest outcome and what the attackers got. */
export interface HostileResult {
  attack: boolean;
  calls: number;
  failures: number;
  p50Ms: number;
  p95Ms: number;
  attacks: Record<string, Record<number | string, number>>;
  rssPeakMb: number;
}

const HONEST = 20;

async function honest(url: string, until: () => boolean) {
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(Array.from({ length: HONEST }, async (_, i) => {
    const name = `honest-${i}`;
    const token = `honest-token-${i}`;
    const client = new Client({ name, version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    while (!until()) {
      let result: CallToolResult | undefined;
      try {
        latencies.push(
          await time(async () => {
            result = await client.callTool({
              name: "get_account",
              arguments: {},
            }) as CallToolResult;
          }),
        );
      } catch {
        failures++;
        continue;
      }
      const user = (result?.structuredContent as { msg?: { user?: { id?: string } } })?.msg?.user;
      if (result?.isError || user?.id !== name) failures++;
    }
    await client.close();
  }));
  return { latencies, failures };
}

/** Writes all of `bytes` (a single write may take only part). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Sends `head`, then `pieces` of `piece` (`pauseMs` apart); the status line's code. */
async function raw(port: number, head: string, piece: Uint8Array, pieces: number, pauseMs = 0) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const encoder = new TextEncoder();
  let done = false;
  const sending = (async () => {
    await writeAll(conn, encoder.encode(head));
    for (let i = 0; i < pieces && !done; i++) {
      await writeAll(conn, piece);
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    }
  })().catch(() => {});
  const buffer = new Uint8Array(64);
  const n = await conn.read(buffer).catch(() => null);
  done = true;
  try {
    conn.close();
  } catch {
    // Closed by the server.
  }
  await sending;
  const text = n ? new TextDecoder().decode(buffer.subarray(0, n)) : "";
  return /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? "closed";
}

function attackers(port: number, until: () => boolean) {
  const tally: Record<string, Record<string, number>> = {};
  const post = (extra: string) =>
    `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer forged\r\n` +
    `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${extra}\r\n`;
  const chunk = new TextEncoder().encode(`10000\r\n${" ".repeat(0x10000)}\r\n`);
  const kinds: Record<string, () => Promise<string>> = {
    "400 MB declared body": () =>
      raw(port, post("Content-Length: 400000000\r\n"), new TextEncoder().encode("{"), 1),
    "8 MiB chunked body": () => raw(port, post("Transfer-Encoding: chunked\r\n"), chunk, 128),
    "trickled body": () =>
      raw(port, post("Content-Length: 100000\r\n"), new TextEncoder().encode(" "), 100000, 100),
    "trickled headers": () =>
      raw(
        port,
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`,
        new TextEncoder().encode("X: y\r\n"),
        100000,
        100,
      ),
    "forged token, guessed session": () =>
      raw(
        port,
        post(`Mcp-Session-Id: ${crypto.randomUUID()}\r\nContent-Length: 2\r\n`),
        new TextEncoder().encode("{}"),
        1,
      ),
  };
  const lanes: Record<string, number> = {
    "400 MB declared body": 4,
    "8 MiB chunked body": 4,
    "trickled body": 50,
    "trickled headers": 50,
    "forged token, guessed session": 4,
  };
  return Promise.all(
    Object.entries(lanes).flatMap(([kind, count]) =>
      Array.from({ length: count }, async () => {
        while (!until()) {
          const status = await kinds[kind]!().catch(() => "error");
          tally[kind] ??= {};
          tally[kind][status] = (tally[kind][status] ?? 0) + 1;
        }
      })
    ),
  ).then(() => tally);
}

/** The server side: the stub, its honest users and the MCP endpoint; prints the URL. */
async function serve(): Promise<void> {
  const stub = await startStub();
  for (let i = 0; i < HONEST; i++) {
    stub.state.users.set(`honest-${i}`, { id: `honest-${i}`, admin: false });
    stub.state.tokens.set(`honest-token-${i}`, `honest-${i}`);
  }
  const endpoint = serveForStub(stub, { bodyTimeoutMs: 2_000, headerTimeoutMs: 2_000 });
  let rssPeak = 0;
  setInterval(() => rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss), 50);
  console.log(endpoint.url);
  // Runs until its stdin closes, then says its peak RSS.
  for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
  console.log(String(rssPeak));
  Deno.exit(0);
}

/** Runs the honest load for `seconds` against a server in its own process, attacked or not. */
export async function runHostile(attack: boolean, seconds = 20): Promise<HostileResult> {
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env",
      "--allow-read",
      import.meta.filename!,
      "--serve",
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await lines.read()).value ?? "";
  const url = text.trim();
  const end = performance.now() + seconds * 1000;
  const until = () => performance.now() > end;
  let attacks: Record<string, Record<string, number>> = {};
  let worker: Worker | undefined;
  if (attack) {
    worker = new Worker(import.meta.url, { type: "module", name: WORKER });
    worker.postMessage({ port: Number(new URL(url).port), seconds });
    worker.onmessage = (event) => attacks = event.data;
  }
  const calls = await honest(url, until);
  while (attack && !Object.keys(attacks).length) await new Promise((r) => setTimeout(r, 50));
  worker?.terminate();
  await server.stdin.close();
  text = "";
  while (true) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
  }
  await server.status;
  return {
    attack,
    calls: calls.latencies.length,
    failures: calls.failures,
    p50Ms: quantile(calls.latencies, 0.5),
    p95Ms: quantile(calls.latencies, 0.95),
    attacks,
    rssPeakMb: Number(text.trim()) / 1024 / 1024,
  };
}

/** In a worker: attack `port` for `seconds`, then post the tally. */
function attackInWorker(): void {
  const scope = self as unknown as {
    onmessage: (e: MessageEvent) => void;
    postMessage(d: unknown): void;
  };
  scope.onmessage = async (event: MessageEvent) => {
    const { port, seconds } = event.data as { port: number; seconds: number };
    const end = performance.now() + seconds * 1000;
    scope.postMessage(await attackers(port, () => performance.now() > end));
  };
}

const WORKER = "hostile-attackers";

// A worker's module is a main module too: tell it by its name first.
if ((globalThis as { name?: string }).name === WORKER) {
  attackInWorker();
} else if (import.meta.main && Deno.args[0] === "--serve") {
  await serve();
} else if (import.meta.main) {
  const seconds = Number(Deno.args[0]) || 20;
  const calm = await runHostile(false, seconds);
  const attacked = await runHostile(true, seconds);
  const f = (n: number, d = 1) => n.toFixed(d);
  const row = (r: HostileResult) =>
    `| ${r.attack ? "with attack" : "no attack"} | ${r.calls} | ${r.failures} | ${f(r.p50Ms)} | ` +
    `${f(r.p95Ms)} | ${f(r.rssPeakMb, 0)} |`;
  console.log([
    `${HONEST} honest sessions calling get_account for ${seconds} s each run; the server (with the stub) in its own process, the attackers in a worker; RSS is the server process's:`,
    "",
    "| run | honest calls | honest failures | p50 ms | p95 ms | RSS peak MB |",
    "| --- | --- | --- | --- | --- | --- |",
    row(calm),
    row(attacked),
    "",
    "| attack (concurrent lanes) | answers |",
    "| --- | --- |",
    ...Object.entries(attacked.attacks).map(([kind, statuses]) =>
      `| ${kind} | ${Object.entries(statuses).map(([s, n]) => `${n} × ${s}`).join(", ")} |`
    ),
  ].join("\n"));
}
