/**
 * Attacks on the HTTP transport found by a review after issue 10's fixes, over real HTTP on
 * 127.0.0.1: a head the front and the server frame differently, bodies that hold the shared body
 * budget without sending anything, one verified caller filling the session cap, and a `Host` that
 * is not a URL authority.
 */
import assert from "node:assert/strict";
import type { HttpOptions } from "../src/mcp/mod.ts";
import { initializeRequest, passwordToken } from "./_helpers.ts";
import { type Endpoint, openEndpoint, readAll, writeAll } from "../testing/mod.ts";

const MiB = 1024 * 1024;

async function withRig(
  fn: (rig: Endpoint) => Promise<void>,
  options: { keycloak?: boolean; http?: Partial<HttpOptions> } = {},
): Promise<void> {
  await using rig = await openEndpoint({ keycloak: options.keycloak, ...options.http });
  await fn(rig);
}

const encoder = new TextEncoder();

const JSON_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

function post(rig: Endpoint, token: string, body: unknown, sessionId?: string): Promise<Response> {
  return fetch(rig.endpoint.url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      authorization: `Bearer ${token}`,
      ...(sessionId ? { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" } : {}),
    },
    body: JSON.stringify(body),
  });
}

async function openSession(rig: Endpoint, token: string): Promise<string> {
  const response = await post(rig, token, initializeRequest());
  assert.equal(response.status, 200);
  await response.body?.cancel();
  return response.headers.get("mcp-session-id")!;
}

async function ping(rig: Endpoint, token: string, sessionId: string): Promise<number> {
  const response = await post(rig, token, { jsonrpc: "2.0", id: 9, method: "ping" }, sessionId);
  await response.body?.cancel();
  return response.status;
}

Deno.test("a head ended by a bare LF cannot keep a connection open past the front's head timer", () =>
  withRig(async ({ port }) => {
    // Before: the front looked for CRLF CRLF and put its `Connection: close` after it, but the
    // server ends a head at a bare LF too, so the front's line landed in the body and the
    // connection stayed open: later heads on it were never timed (one took 130 s).
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const body = "XXXX\r\nConnection: close\r\n\r\n";
    await writeAll(
      conn,
      encoder.encode(
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer mallory-token\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\nXXXX\r\n\r\n`,
      ),
    );
    const reading = readAll(conn, 2_000);
    // Well past the head timer, a second request on the same connection.
    await new Promise((r) => setTimeout(r, 600));
    await writeAll(conn, encoder.encode(`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`))
      .catch(() => {});
    const text = await reading;
    const answers = text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    assert.ok(answers.length <= 1, `the connection served ${answers.length} requests: ${answers}`);
  }, { http: { headerTimeoutMs: 300 } }));

Deno.test("bodies that declare the cap and send nothing do not stop small honest requests", () =>
  withRig(async (rig) => {
    // Before: two idle connections declaring 1 MiB held the whole 2 MiB budget, so every POST,
    // however small, got 503 for as long as they stayed (16 connections with the defaults).
    const head = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${rig.port}\r\n` +
      "Authorization: Bearer mallory-token\r\nContent-Type: application/json\r\n" +
      `Content-Length: ${MiB}\r\n\r\n{`;
    const idle = await Promise.all(
      [0, 1].map(() => Deno.connect({ hostname: "127.0.0.1", port: rig.port })),
    );
    try {
      for (const conn of idle) await writeAll(conn, encoder.encode(head));
      await new Promise((r) => setTimeout(r, 300));
      const sessionId = await openSession(rig, rig.stub.tokens.alice);
      assert.equal(await ping(rig, rig.stub.tokens.alice, sessionId), 200);
    } finally {
      for (const conn of idle) conn.close();
    }
  }, { http: { maxBodyBytes: MiB, bodyBudgetBytes: 2 * MiB, bodyTimeoutMs: 5_000 } }));

Deno.test("with Keycloak, one verified caller filling the session cap cannot push out another's", () =>
  withRig(async (rig) => {
    // Before: at the cap the least recently used idle session closed, whoever owned it, so bob
    // (any user of the realm) could open sessions until alice's was gone.
    const alice = (await passwordToken(rig.stub, "alice")).access;
    const bob = (await passwordToken(rig.stub, "bob")).access;
    const aliceSession = await openSession(rig, alice);
    for (let i = 0; i < 6; i++) await openSession(rig, bob);
    assert.equal(await ping(rig, alice, aliceSession), 200);
  }, { keycloak: true, http: { maxSessions: 4, maxSessionsPerCaller: 2 } }));

Deno.test("a Host that is not a URL authority gets 403, not 500 and a log line", () =>
  withRig(async ({ port }) => {
    for (const host of [`127.0.0.1:${port}.evil.example`, "a b", "[::1"]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await writeAll(conn, encoder.encode(`GET /mcp HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
      const status = /^HTTP\/1\.1 (\d{3})/.exec(await readAll(conn, 2_000))?.[1];
      assert.equal(status, "403", host);
    }
  }));
