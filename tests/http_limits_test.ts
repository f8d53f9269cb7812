/**
 * Attacks on memory and time, over real HTTP: bodies past the cap (declared or not, with a
 * session or without) get 413 before they are read; bodies that trickle in are cut off; sessions
 * are capped, the least recently used idle one makes room, idle ones are closed.
 */
import assert from "node:assert/strict";
import type { HttpEndpoint, HttpOptions } from "../src/mcp/mod.ts";
import { initializeRequest } from "./_helpers.ts";
import { type Endpoint, openEndpoint, writeAll } from "../testing/mod.ts";

const MiB = 1024 * 1024;

async function withRig(
  fn: (rig: Endpoint) => Promise<void>,
  options: Partial<HttpOptions> = {},
): Promise<void> {
  await using rig = await openEndpoint(options);
  await fn(rig);
}

/**
 * Sends `head` over a raw connection, then `body` a piece at a time (`pauseMs` apart), and
 * returns the status the server answered with, or "no answer" after `waitMs`.
 */
async function raw(
  port: number,
  head: string,
  body: { pieces: number; piece: Uint8Array; pauseMs?: number },
  waitMs = 5_000,
): Promise<number | "no answer"> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const encoder = new TextEncoder();
  let stop = false;
  const sending = (async () => {
    await writeAll(conn, encoder.encode(head));
    for (let i = 0; i < body.pieces && !stop; i++) {
      await writeAll(conn, body.piece);
      if (body.pauseMs) await new Promise((r) => setTimeout(r, body.pauseMs));
    }
  })().catch(() => {});
  const timer = setTimeout(() => conn.close(), waitMs);
  let text = "";
  try {
    const buffer = new Uint8Array(4096);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch {
    // Closed by the timer: no answer.
  } finally {
    stop = true;
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  await sending;
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
  return status ? Number(status) : "no answer";
}

function headers(port: number, extra: string): string {
  return `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer mallory-token\r\n` +
    "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n" +
    `${extra}\r\n`;
}

/** A chunk of chunked transfer encoding holding `size` bytes. */
function chunk(size: number): Uint8Array {
  return new TextEncoder().encode(`${size.toString(16)}\r\n${" ".repeat(size)}\r\n`);
}

async function openSession(endpoint: HttpEndpoint, token: string): Promise<string> {
  const response = await fetch(endpoint.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify(initializeRequest()),
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  return response.headers.get("mcp-session-id")!;
}

function ping(endpoint: HttpEndpoint, token: string, sessionId: string): Promise<Response> {
  return fetch(endpoint.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${token}`,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-06-18",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 5, method: "ping" }),
  });
}

Deno.test("a body declaring 400 MB gets 413 at once, before it is sent, with no session", () =>
  withRig(async ({ port, endpoint }) => {
    // Before: the body was read whole first; the server waited for all 400 MB.
    const status = await raw(port, headers(port, "Content-Length: 400000000\r\n"), {
      pieces: 1,
      piece: new TextEncoder().encode('{"jsonrpc":'),
    });
    assert.equal(status, 413);
    assert.equal(endpoint.sessions, 0);
  }));

Deno.test("a chunked body with no Content-Length gets 413 once past the cap, with no session", () =>
  withRig(async ({ port }) => {
    const status = await raw(port, headers(port, "Transfer-Encoding: chunked\r\n"), {
      pieces: 100,
      piece: chunk(64 * 1024),
    });
    assert.equal(status, 413);
  }, { maxBodyBytes: 1 * MiB }));

Deno.test("inside a session too, a declared and an undeclared body past the cap get 413", () =>
  withRig(async ({ port, stub, endpoint }) => {
    const sessionId = await openSession(endpoint, stub.tokens.alice);
    const session =
      `Authorization: Bearer ${stub.tokens.alice}\r\nMcp-Session-Id: ${sessionId}\r\n` +
      "Mcp-Protocol-Version: 2025-06-18\r\n";
    const head = (extra: string) =>
      headers(port, session + extra).replace(/Authorization: Bearer mallory-token\r\n/, "");
    const piece = new TextEncoder().encode("{");
    assert.equal(await raw(port, head("Content-Length: 400000000\r\n"), { pieces: 1, piece }), 413);
    const chunked = await raw(port, head("Transfer-Encoding: chunked\r\n"), {
      pieces: 100,
      piece: chunk(64 * 1024),
    });
    assert.equal(chunked, 413);
    assert.equal((await ping(endpoint, stub.tokens.alice, sessionId)).status, 200);
  }, { maxBodyBytes: 1 * MiB }));

Deno.test("bodies of unknown length beyond the shared budget get 503 at once, not memory", () =>
  withRig(async ({ port }) => {
    // Each chunked body may grow to the cap, so two of them hold the whole 2 MiB budget.
    const stalled = (pieces: number) =>
      raw(port, headers(port, "Transfer-Encoding: chunked\r\n"), {
        pieces,
        piece: chunk(1024),
        pauseMs: 100,
      }, 1_500);
    const first = stalled(100);
    const second = stalled(100);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await stalled(1), 503);
    assert.deepEqual([await first, await second], [408, 408]);
  }, { maxBodyBytes: 1 * MiB, bodyBudgetBytes: 2 * MiB, bodyTimeoutMs: 1_000 }));

Deno.test("a body that trickles in a byte at a time is cut off with 408", () =>
  withRig(async ({ port }) => {
    // Before: the server waited as long as the bytes kept coming.
    const status = await raw(port, headers(port, "Content-Length: 1000\r\n"), {
      pieces: 1000,
      piece: new TextEncoder().encode(" "),
      pauseMs: 50,
    }, 5_000);
    assert.equal(status, 408);
  }, { bodyTimeoutMs: 300 }));

Deno.test("headers that trickle in a line at a time are cut off with 408", () =>
  withRig(async ({ port }) => {
    // Before: Deno.serve waited for the headers as long as they kept coming.
    const status = await raw(port, `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`, {
      pieces: 1000,
      piece: new TextEncoder().encode("X-Slow: y\r\n"),
      pauseMs: 50,
    }, 5_000);
    assert.equal(status, 408);
  }, { headerTimeoutMs: 300 }));

Deno.test("past the connection limit, the connection waiting longest for its head gives way", () =>
  withRig(async ({ port, stub, endpoint }) => {
    // Four connections that send nothing hold every place; before, every new connection was then
    // closed at once, so they locked honest clients out for as long as they were renewed.
    const idle = await Promise.all(
      Array.from({ length: 4 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(await openSession(endpoint, stub.tokens.alice), "an honest client is served");
    assert.equal(await idle[0]!.read(new Uint8Array(16)), null, "the oldest idle one was closed");
    for (const conn of idle) conn.close();
  }, { maxConnections: 4 }));

/**
 * Sends `head` on a new connection and reads until the server closes it, or `waitMs` pass: the
 * status it answered with, and whether it closed the connection.
 */
async function held(port: number, head: string, waitMs = 5_000) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, new TextEncoder().encode(head));
  const timer = setTimeout(() => conn.close(), waitMs);
  let text = "";
  let closed = false;
  try {
    const buffer = new Uint8Array(4096);
    for (let n; (n = await conn.read(buffer)) !== null;) {
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    closed = true;
    conn.close();
  } catch {
    // Closed by the timer: the server kept the connection open.
  } finally {
    clearTimeout(timer);
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), closed };
}

Deno.test("a request answered without reading its body cannot hold its connection", () =>
  withRig(async ({ port }) => {
    // Before: the 401 went out, then the server waited for the 1 GB body as long as the
    // connection stayed open, so 2,100 such connections locked everyone out.
    const unsigned = headers(port, "Content-Length: 1000000000\r\n")
      .replace(/Authorization: Bearer mallory-token\r\n/, "");
    assert.deepEqual(await held(port, unsigned), { status: 401, closed: true });
    const probe =
      `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000\r\n\r\n`;
    assert.deepEqual(await held(port, probe), { status: 200, closed: true });
  }, { bodyTimeoutMs: 300 }));

Deno.test("past the connection limit, the connection sending its body longest gives way", () =>
  withRig(async ({ port, stub, endpoint }) => {
    // Four bodies that never come (their heads are whole) hold every place; before, every new
    // connection was closed for as long as they were held.
    const head = headers(port, "Content-Length: 1000\r\n");
    const busy = await Promise.all(Array.from({ length: 4 }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await writeAll(conn, new TextEncoder().encode(head));
      return conn;
    }));
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(await openSession(endpoint, stub.tokens.alice), "an honest client is served");
    assert.equal(await busy[0]!.read(new Uint8Array(16)), null, "the oldest sender was closed");
    for (const conn of busy) conn.close();
  }, { maxConnections: 4 }));

Deno.test("past the connection limit with every request whole, new connections are closed", () =>
  withRig(async ({ port, stub, endpoint }) => {
    // Two event streams (GET requests, whole) hold both places: they are not cut for a newcomer.
    const streams = await Promise.all([stub.tokens.alice, stub.tokens.bob].map(async (token) => {
      const sessionId = await openSession(endpoint, token);
      const response = await fetch(endpoint.url, {
        headers: {
          accept: "text/event-stream",
          authorization: `Bearer ${token}`,
          "mcp-session-id": sessionId,
          "mcp-protocol-version": "2025-06-18",
        },
      });
      assert.equal(response.status, 200);
      return response;
    }));
    const extra = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await extra.read(new Uint8Array(16)), null, "closed without an answer");
    extra.close();
    for (const stream of streams) await stream.body?.cancel();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(await openSession(endpoint, stub.tokens.alice), "places free again once they close");
  }, { maxConnections: 2 }));

Deno.test("a request head past 64 KiB gets 431", () =>
  withRig(async ({ port }) => {
    const status = await raw(port, `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`, {
      pieces: 100,
      piece: new TextEncoder().encode(`X-Big: ${"y".repeat(1000)}\r\n`),
    });
    assert.equal(status, 431);
  }));

Deno.test("at the session cap, the least recently used idle session is closed to make room", () =>
  withRig(async ({ stub, endpoint }) => {
    const first = await openSession(endpoint, stub.tokens.alice);
    const second = await openSession(endpoint, stub.tokens.bob);
    await (await ping(endpoint, stub.tokens.alice, first)).body?.cancel();
    // Now bob's is the least recently used.
    const third = await openSession(endpoint, stub.tokens.admin);
    assert.equal(endpoint.sessions, 2);
    assert.equal((await ping(endpoint, stub.tokens.bob, second)).status, 404);
    for (const [token, id] of [[stub.tokens.alice, first], [stub.tokens.admin, third]]) {
      const response = await ping(endpoint, token!, id!);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
  }, { maxSessions: 2 }));

Deno.test("sessions opened all at once never pass the cap", () =>
  withRig(async ({ stub, endpoint }) => {
    const statuses = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const response = await fetch(endpoint.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          authorization: `Bearer ${stub.tokens.alice}-${i}`,
        },
        body: JSON.stringify(initializeRequest()),
      });
      await response.body?.cancel();
      return response.status;
    }));
    // Each opening either made room (200) or found every session busy answering (503).
    assert.deepEqual([...new Set(statuses)].filter((s) => s !== 200 && s !== 503), []);
    assert.ok(statuses.filter((s) => s === 200).length >= 5);
    assert.equal(endpoint.sessions, 5);
  }, { maxSessions: 5 }));

Deno.test("at the session cap with every session busy, a new session gets 503 with Retry-After", () =>
  withRig(async ({ stub, endpoint }) => {
    const id = await openSession(endpoint, stub.tokens.alice);
    stub.inject("get_account", { delayMs: 2_000 });
    const busy = fetch(endpoint.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${stub.tokens.alice}`,
        "mcp-session-id": id,
        "mcp-protocol-version": "2025-06-18",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "get_account", arguments: {} },
      }),
    });
    while (stub.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    const refused = await fetch(endpoint.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${stub.tokens.bob}`,
      },
      body: JSON.stringify(initializeRequest()),
    });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("retry-after"), "10");
    await refused.body?.cancel();
    await (await busy).text();
    assert.ok(await openSession(endpoint, stub.tokens.bob), "room again once the call ended");
  }, { maxSessions: 1 }));

Deno.test("a session unused past the idle limit is closed and its id no longer works", () =>
  withRig(async ({ stub, endpoint }) => {
    const id = await openSession(endpoint, stub.tokens.alice);
    assert.equal(endpoint.sessions, 1);
    const deadline = Date.now() + 5_000;
    while (endpoint.sessions > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(endpoint.sessions, 0);
    const response = await ping(endpoint, stub.tokens.alice, id);
    assert.equal(response.status, 404);
    await response.body?.cancel();
  }, { sessionIdleMs: 200 }));
