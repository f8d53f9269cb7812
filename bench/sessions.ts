/**
 * Sessions up to the cap and beyond, then expiry: opens `SQUONK2_MCP_MAX_SESSIONS`-many idle
 * sessions (each with its own made-up token, as an attacker could), then a tenth more (each
 * closes the least recently used idle one), waits for the idle limit, and prints the heap
 * before, at the cap, past it and after expiry, with the memory each idle session holds.
 *
 * `deno task bench:sessions [max] [idle seconds]`; not a unit test.
 *
 * @module
 */
import { startStub } from "../src/stub/mod.ts";
import { initializeRequest, serveForStub } from "../testing/mod.ts";

/** What a run found. */
export interface SessionsResult {
  max: number;
  idleS: number;
  opened: number;
  refused: number;
  atCap: number;
  pastCap: number;
  afterExpiry: number;
  heapBeforeMb: number;
  heapAtCapMb: number;
  heapPastCapMb: number;
  heapAfterMb: number;
  rssBeforeMb: number;
  rssAtCapMb: number;
  rssAfterMb: number;
  kbPerSession: number;
  expirySeconds: number;
}

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Deno.memoryUsage().heapUsed / 1024 / 1024;
}

async function open(url: string, i: number): Promise<number> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer made-up-token-${i}-${crypto.randomUUID()}`,
    },
    body: JSON.stringify(initializeRequest(1, `bench-${i}`)),
  });
  await response.body?.cancel();
  return response.status;
}

/** Opens `max` sessions, then `max / 10` more, then waits for them all to expire. */
export async function runSessions(max = 1000, idleS = 5): Promise<SessionsResult> {
  const stub = await startStub();
  const endpoint = serveForStub(stub, { maxSessions: max, sessionIdleMs: idleS * 1000 });
  const statuses: number[] = [];
  const openMany = async (from: number, count: number) => {
    for (let i = from; i < from + count; i += 50) {
      const batch = Array.from({ length: Math.min(50, from + count - i) }, (_, k) => i + k);
      statuses.push(...await Promise.all(batch.map((n) => open(endpoint.url, n))));
    }
  };
  const heapBefore = heapMb();
  const rssBefore = Deno.memoryUsage().rss / 1024 / 1024;
  await openMany(0, max);
  const atCap = endpoint.sessions;
  const heapAtCap = heapMb();
  const rssAtCap = Deno.memoryUsage().rss / 1024 / 1024;
  await openMany(max, Math.ceil(max / 10));
  const pastCap = endpoint.sessions;
  const heapPastCap = heapMb();
  const waitStart = performance.now();
  while (endpoint.sessions > 0 && performance.now() - waitStart < (idleS + 60) * 1000) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const expirySeconds = (performance.now() - waitStart) / 1000;
  const afterExpiry = endpoint.sessions;
  const heapAfter = heapMb();
  const rssAfter = Deno.memoryUsage().rss / 1024 / 1024;
  await endpoint.shutdown();
  await stub.shutdown();
  return {
    max,
    idleS,
    opened: statuses.filter((s) => s === 200).length,
    refused: statuses.filter((s) => s !== 200).length,
    atCap,
    pastCap,
    afterExpiry,
    heapBeforeMb: heapBefore,
    heapAtCapMb: heapAtCap,
    heapPastCapMb: heapPastCap,
    heapAfterMb: heapAfter,
    rssBeforeMb: rssBefore,
    rssAtCapMb: rssAtCap,
    rssAfterMb: rssAfter,
    kbPerSession: (heapAtCap - heapBefore) * 1024 / atCap,
    expirySeconds,
  };
}

if (import.meta.main) {
  const [max, idle] = Deno.args.map(Number);
  const r = await runSessions(max || 1000, idle || 5);
  const f = (n: number, d = 1) => n.toFixed(d);
  console.log(
    [
      `${r.max} idle sessions (idle limit ${r.idleS} s), then ${r.max / 10} more past the cap:`,
      `${r.opened} opened, ${r.refused} refused; open at the cap ${r.atCap}, past it ${r.pastCap}, ` +
      `after expiry ${r.afterExpiry} (all closed ${
        f(r.expirySeconds)
      } s after the last one opened)`,
      "",
      "| | before | at the cap | past the cap | after expiry |",
      "| --- | --- | --- | --- | --- |",
      `| heap MB | ${f(r.heapBeforeMb)} | ${f(r.heapAtCapMb)} | ${f(r.heapPastCapMb)} | ` +
      `${f(r.heapAfterMb)} |`,
      `| RSS MB | ${f(r.rssBeforeMb, 0)} | ${f(r.rssAtCapMb, 0)} | | ${f(r.rssAfterMb, 0)} |`,
      "",
      `Heap per idle session: ${f(r.kbPerSession)} KB.`,
    ].join("\n"),
  );
}
