/**
 * Hostile answers from the Account Server: a body dribbled in tiny chunks is held to the cap by
 * the bytes actually kept.
 */
import assert from "node:assert/strict";
import { AsApi } from "../src/api/mod.ts";

const MiB = 1024 * 1024;

/** A server that answers every request with `total` bytes in chunks of `chunk` bytes. */
function dribbler(total: number, chunk: number): Deno.HttpServer<Deno.NetAddr> {
  const piece = new TextEncoder().encode("x".repeat(chunk));
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) return controller.close();
        controller.enqueue(piece);
        sent += chunk;
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
}

Deno.test("an answer sent in 114-byte chunks past the cap is refused with memory near the cap", async () => {
  // Before: each chunk kept its 64 KiB read buffer alive, so 8 MiB in 114-byte chunks took
  // over a gigabyte for a 4 MiB cap.
  const server = dribbler(8 * MiB, 114);
  const api = new AsApi({
    url: `http://127.0.0.1:${server.addr.port}/api`,
    env: () => undefined,
    maxResponseBytes: 4 * MiB,
  });
  const before = Deno.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 2);
  try {
    const rv = await api.call("get_version", {}, { timeoutS: 60 });
    assert.deepEqual(rv, {
      success: false,
      msg: {
        error:
          "Cannot get_version: 200 OK: the response is larger than 4194304 bytes; ask for less",
      },
      http_status_code: 200,
    });
  } finally {
    clearInterval(sampler);
    await server.shutdown();
  }
  const grewMiB = (Math.max(peak, Deno.memoryUsage().rss) - before) / MiB;
  assert.ok(grewMiB < 16 * 4, `memory grew by ${grewMiB.toFixed(0)} MiB for a 4 MiB cap`);
});

Deno.test("an answer within the cap sent in small chunks arrives whole", async () => {
  const server = dribbler(300_000, 1000);
  const api = new AsApi({
    url: `http://127.0.0.1:${server.addr.port}/api`,
    env: () => undefined,
    maxResponseBytes: 4 * MiB,
  });
  try {
    const rv = await api.call("get_version", {}, { timeoutS: 60 });
    assert.equal(rv.http_status_code, 200);
    assert.match(String(rv.msg.error), /not valid JSON: "xxxx/);
  } finally {
    await server.shutdown();
  }
});
