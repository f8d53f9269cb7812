/**
 * Load over the HTTP transport: many concurrent MCP sessions, each with its own Account Server
 * token, each making a series of calls against the stub. Counts failures and cross-session leaks
 * (a call that reached the Account Server with another session's token, or answered with another
 * user), and reports throughput, latency percentiles and memory before and after.
 *
 * `deno task load` runs it alone; `deno task bench` includes it in BENCHMARKS.md.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { startStub } from "../src/stub/mod.ts";
import { serveForStub } from "../testing/mod.ts";
import { quantile, time } from "./_measure.ts";

/** What a load run found. */
export interface LoadResult {
  sessions: number;
  callsPerSession: number;
  calls: number;
  failures: number;
  leaks: number;
  seconds: number;
  callsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  heapBeforeMb: number;
  heapPeakMb: number;
  heapAfterMb: number;
}

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Deno.memoryUsage().heapUsed / 1024 / 1024;
}

/** Runs `sessions` concurrent sessions of `callsPerSession` calls each. */
export async function runLoad(sessions = 50, callsPerSession = 20): Promise<LoadResult> {
  const stub = await startStub();
  const endpoint = serveForStub(stub);
  const users = Array.from({ length: sessions }, (_, i) => {
    const name = `load-user-${i}`;
    const token = `load-token-${i}-${crypto.randomUUID()}`;
    stub.state.users.set(name, { id: name, admin: false });
    stub.state.tokens.set(token, name);
    return { name, token };
  });
  const heapBefore = heapMb();
  let failures = 0;
  let leaks = 0;
  const latencies: number[] = [];
  const started = performance.now();
  let heapPeak = heapBefore;

  await Promise.all(users.map(async ({ name, token }) => {
    const client = new Client({ name: `load-${name}`, version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(endpoint.url), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    for (let i = 0; i < callsPerSession; i++) {
      let result: CallToolResult | undefined;
      latencies.push(
        await time(async () => {
          result = await client.callTool({ name: "get_account", arguments: {} }) as CallToolResult;
        }),
      );
      const user = (result?.structuredContent as { msg?: { user?: { id?: string } } })?.msg?.user;
      if (result?.isError) failures++;
      else if (user?.id !== name) leaks++;
    }
    heapPeak = Math.max(heapPeak, Deno.memoryUsage().heapUsed / 1024 / 1024);
    await client.close();
  }));
  const seconds = (performance.now() - started) / 1000;

  // Every request the Account Server saw must carry a token of a session that made it.
  const perToken = new Map<string, number>();
  for (const request of stub.requests) {
    const token = request.authorization?.replace(/^Bearer /, "") ?? "";
    perToken.set(token, (perToken.get(token) ?? 0) + 1);
  }
  for (const { token } of users) {
    if (perToken.get(token) !== callsPerSession) leaks++;
  }

  await endpoint.shutdown();
  await stub.shutdown();
  const heapAfter = heapMb();
  const calls = sessions * callsPerSession;
  return {
    sessions,
    callsPerSession,
    calls,
    failures,
    leaks,
    seconds,
    callsPerSecond: calls / seconds,
    p50Ms: quantile(latencies, 0.5),
    p95Ms: quantile(latencies, 0.95),
    heapBeforeMb: heapBefore,
    heapPeakMb: heapPeak,
    heapAfterMb: heapAfter,
  };
}

if (import.meta.main) {
  const result = await runLoad();
  console.log(JSON.stringify(result, null, 2));
  if (result.failures || result.leaks) Deno.exit(1);
}
