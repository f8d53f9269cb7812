/**
 * Event streams end to end through the SDK's `Client`: `read_event_stream` reads what the stub's
 * actions produced, replays from a cursor, reports gaps and keeps within its bounds; the
 * event-stream resource holds the socket while subscribed and survives a dropped socket.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  type CallToolResult,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { StaticToken } from "../src/auth/mod.ts";
import type { ToolSelection } from "../src/mcp/mod.ts";
import { PROCESSING_CHARGE, startStub, STUB_ACTION, type StubServer } from "../src/stub/mod.ts";
import { initializeRequest, type SeedIds, seedIds, selfSignedCertificate } from "./_helpers.ts";
import { openEndpoint, openSession } from "../testing/mod.ts";
import { servingWith } from "./_spawn.ts";

const URI = "squonk2://event-stream";

interface Msg {
  events: { ordinal: number; type: string; body: Record<string, unknown> }[];
  next: Record<string, number>;
  events_lost: boolean;
  lost_count?: number;
  stopped_by: string;
  count: number;
  unparsed?: number;
  error?: string;
}

interface Fixture extends AsyncDisposable {
  stub: StubServer;
  client: Client;
  ids: SeedIds;
  /** The caller's stream id. */
  stream: number;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** Calls read_event_stream and returns its msg. */
  read(args?: Record<string, unknown>): Promise<Msg>;
  /** How many times the resource was said to be updated. */
  updates(): number;
}

/** A stub and an MCP session acting as `as` (alice by default). */
async function session(options: {
  as?: "alice" | "bob";
  tls?: boolean;
  verifySslCert?: boolean;
  maxResultBytes?: number;
  selection?: ToolSelection;
} = {}): Promise<Fixture> {
  const user = options.as ?? "alice";
  let updates = 0;
  const opened = await openSession({
    stub: options.tls ? await selfSignedCertificate() : {},
    tokens: (stub) => new StaticToken(stub.tokens[user]),
    verifySslCert: options.verifySslCert,
    maxResultBytes: options.maxResultBytes,
    selection: options.selection,
    prepare: (c) =>
      c.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void updates++),
  });
  const { stub, client, call } = opened;
  const stream = [...stub.state.streams.values()].find((s) => s.owner === user)!.id;
  return {
    stub,
    client,
    ids: seedIds(stub),
    stream,
    call,
    async read(args = {}) {
      const result = await call("read_event_stream", { wait_s: 0.3, ...args });
      return (result.structuredContent as { msg: Msg }).msg;
    },
    updates: () => updates,
    [Symbol.asyncDispose]: () => opened[Symbol.asyncDispose](),
  };
}

/** Waits until `condition` holds, failing after 5 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Lets `ms` pass, to see that nothing more happens in that time. */
function settle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function inject(f: Fixture, ...ns: number[]): void {
  for (const n of ns) f.stub.events.inject(f.stream, "test.Event", { n });
}

async function readResource(f: Fixture): Promise<Msg & { subscribed: boolean; more?: number }> {
  const { contents } = await f.client.readResource({ uri: URI });
  return JSON.parse(String((contents[0] as { text: string }).text));
}

const ordinals = (msg: Msg) => msg.events.map((e) => e.ordinal);

Deno.test("events created by stub actions are read back in order, with where to continue", async () => {
  await using f = await session();
  const first = await f.call("create_unit", { org_id: f.ids.org, unit_name: "A", billing_day: 1 });
  const second = await f.call("create_unit", { org_id: f.ids.org, unit_name: "B", billing_day: 2 });
  f.stub.events.charge(f.ids.tierProduct, { coins: "2.50" });
  const msg = await f.read({ from_ordinal: 0 });
  const unitId = (r: CallToolResult) => (r.structuredContent as { msg: { id: string } }).msg.id;
  assert.deepEqual(msg.events.map((e) => [e.ordinal, e.type, e.body.unit_id ?? e.body.product]), [
    [1, STUB_ACTION, unitId(first)],
    [2, STUB_ACTION, unitId(second)],
    [3, PROCESSING_CHARGE, f.ids.tierProduct],
  ]);
  assert.deepEqual(msg.next, { from_ordinal: 3 });
  assert.equal(msg.events_lost, false);
  assert.equal(msg.stopped_by, "wait_s");
  assert.deepEqual(await f.read(msg.next).then(ordinals), [], "nothing is read twice");
});

Deno.test("replay from an ordinal returns exactly the later events", async () => {
  await using f = await session();
  inject(f, 1, 2, 3, 4, 5);
  const msg = await f.read({ from_ordinal: 3 });
  assert.deepEqual(msg.events.map((e) => [e.ordinal, e.body.n]), [[4, 4], [5, 5]]);
  assert.equal(msg.events_lost, false);
});

Deno.test("from_timestamp and from_datetime replay from a time", async () => {
  await using f = await session();
  inject(f, 1, 2);
  const third = f.stub.events.inject(f.stream, "test.Event", { n: 3 });
  assert.deepEqual(await f.read({ from_timestamp: third.timestamp }).then(ordinals), [3]);
  const datetime = new Date(f.stub.events.events(f.stream)[0]!.timestamp).toISOString();
  assert.deepEqual(await f.read({ from_datetime: datetime }).then(ordinals), [1, 2, 3]);
});

Deno.test("a gap in ordinals is reported as events lost", async () => {
  await using f = await session();
  inject(f, 1, 2, 3, 4, 5);
  f.stub.events.expire(f.stream, 2);
  const msg = await f.read({ from_ordinal: 1 });
  assert.deepEqual(ordinals(msg), [3, 4, 5]);
  assert.equal(msg.events_lost, true);
  assert.equal(msg.lost_count, 1, "ordinal 2 is gone");
});

Deno.test("max_events stops the read, and reading on from next continues where it stopped", async () => {
  await using f = await session();
  inject(f, 1, 2, 3, 4, 5);
  const msg = await f.read({ from_ordinal: 0, max_events: 2 });
  assert.deepEqual(ordinals(msg), [1, 2]);
  assert.equal(msg.stopped_by, "max_events");
  assert.deepEqual(await f.read(msg.next).then(ordinals), [3, 4, 5]);
});

Deno.test("with no cursor a read returns only new events, within wait_s", async () => {
  await using f = await session();
  inject(f, 1);
  const reading = f.read({ wait_s: 1 });
  await until(() => f.stub.events.connected(f.stream), "the read is connected");
  inject(f, 2);
  const msg = await reading;
  assert.deepEqual(ordinals(msg), [2]);
  assert.equal(msg.stopped_by, "wait_s");
});

Deno.test("bounds are refused before anything is sent: max_events, wait_s, two cursors", async () => {
  await using f = await session();
  const refusals = [
    [{ max_events: 1001 }, /max_events/],
    [{ wait_s: 31 }, /wait_s/],
    [{ from_ordinal: 1, from_timestamp: 5 }, /at most one of from_ordinal, from_timestamp/],
  ] as const;
  for (const [args, error] of refusals) {
    const result = await f.call("read_event_stream", args);
    assert.equal(result.isError, true);
    assert.match(String((result.structuredContent as { msg: Msg }).msg.error), error);
  }
  assert.equal(f.stub.requests.length, 0, "no request reached the stub");
  assert.equal(f.stub.events.connections(f.stream), 0, "no socket was opened");
});

Deno.test("the result size limit cuts a read at an event, and next resumes after it", async () => {
  await using f = await session({ maxResultBytes: 4096 });
  const body = { text: "é".repeat(150) };
  for (let n = 1; n <= 40; n++) f.stub.events.inject(f.stream, "test.Event", { n, ...body });
  const result = await f.call("read_event_stream", { from_ordinal: 0, wait_s: 0.3 });
  const text = (result.content[0] as { text: string }).text;
  assert.ok(new TextEncoder().encode(text).length <= 4096, "the result fits the limit");
  const msg = (result.structuredContent as { msg: Msg }).msg;
  assert.equal(msg.stopped_by, "size_limit");
  assert.ok(msg.count > 0 && msg.count < 40);
  assert.deepEqual(msg.next, { from_ordinal: msg.count });
  assert.equal((await f.read(msg.next)).events[0]?.ordinal, msg.count + 1, "nothing skipped");
});

Deno.test("a read is of the caller's own stream: another's events are not seen", async () => {
  await using f = await session({ as: "bob" });
  f.stub.events.charge(f.ids.tierProduct, { coins: "1.00" });
  inject(f, 7);
  const msg = await f.read({ from_ordinal: 0 });
  assert.deepEqual(msg.events.map((e) => e.body.n), [7], "alice's charge is not on bob's stream");
});

Deno.test("a location or stream id from the caller is refused, and nothing connects", async () => {
  await using f = await session({ as: "bob" });
  const alice = [...f.stub.state.streams.values()].find((s) => s.owner === "alice")!;
  for (const args of [{ location: alice.location }, { event_stream_id: alice.id }]) {
    const result = await f.call("read_event_stream", args);
    assert.equal(result.isError, true);
    assert.match(
      String((result.structuredContent as { msg: Msg }).msg.error),
      /^Cannot read_event_stream: invalid input: .*(location|event_stream_id)/,
    );
  }
  assert.equal(f.stub.events.connections(alice.id), 0);
});

Deno.test("a caller without an event stream is told to create one", async () => {
  await using f = await session({ as: "bob" });
  f.stub.state.streams.delete(f.stream);
  const result = await f.call("read_event_stream", {});
  assert.equal(result.isError, true);
  assert.match(
    String((result.structuredContent as { msg: Msg }).msg.error),
    /^Cannot read_event_stream: you have no event stream: create one with create_event_stream/,
  );
});

Deno.test("a PROTOCOL_STRING stream's events come back with their fields parsed", async () => {
  await using f = await session();
  await f.call("delete_event_stream", { event_stream_id: f.stream });
  await f.call("create_event_stream", { event_format: "PROTOCOL_STRING" });
  f.stub.events.charge(f.ids.tierProduct, { coins: "3.25", name: "docking" });
  const msg = await f.read({ from_ordinal: 0 });
  assert.equal(msg.events.length, 1);
  assert.equal(msg.events[0]!.type, PROCESSING_CHARGE);
  assert.equal(msg.events[0]!.body.coins, "3.25");
  assert.equal(msg.events[0]!.body.name, "docking");
  assert.equal(msg.events[0]!.body.eoc, true);
  assert.equal(msg.events[0]!.body.merchant_id, 1);
});

Deno.test("wss: with verification off a self-signed service is read; with it on, refused", async () => {
  await using unverified = await session({ tls: true, verifySslCert: false });
  assert.match(unverified.stub.state.streams.get(unverified.stream)!.location, /^wss:/);
  inject(unverified, 1, 2);
  assert.deepEqual(await unverified.read({ from_ordinal: 0 }).then(ordinals), [1, 2]);

  await using verified = await session({ tls: true });
  const result = await verified.call("read_event_stream", { wait_s: 0.3 });
  assert.equal(result.isError, true, "the Account Server itself is not trusted");
  assert.equal(verified.stub.events.connections(verified.stream), 0);
});

Deno.test("a subscription notifies, and a dropped socket loses nothing and repeats nothing", async () => {
  await using f = await session();
  await f.client.subscribeResource({ uri: URI });
  await until(() => f.stub.events.connected(f.stream), "the subscription is connected");
  inject(f, 1, 2);
  await until(() => f.updates() === 1, "the client is told of the update");
  assert.deepEqual(await readResource(f).then(ordinals), [1, 2]);

  f.stub.events.drop(f.stream);
  inject(f, 3, 4);
  await until(() => f.stub.events.connections(f.stream) === 2, "the subscription reconnects");
  inject(f, 5);
  await until(() => f.updates() === 2, "the client is told again");
  await new Promise((resolve) => setTimeout(resolve, 50));
  const msg = await readResource(f);
  assert.deepEqual(ordinals(msg), [3, 4, 5]);
  assert.equal(msg.events_lost, false);
  assert.deepEqual(await readResource(f).then(ordinals), [], "a read empties the buffer");
});

Deno.test("a tool read during a subscription borrows the socket and gives it back", async () => {
  await using f = await session();
  await f.client.subscribeResource({ uri: URI });
  await until(() => f.stub.events.connected(f.stream), "the subscription is connected");
  inject(f, 1);
  await until(() => f.updates() === 1, "the subscription has event 1");
  assert.deepEqual(await f.read({ from_ordinal: 0 }).then(ordinals), [1]);
  await until(() => f.stub.events.connections(f.stream) === 3, "the subscription is back");
  inject(f, 2);
  await until(() => f.updates() >= 1 && f.stub.events.events(f.stream).length === 2, "event 2");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(await readResource(f).then(ordinals), [1, 2]);
});

Deno.test("unsubscribing, and ending the session, close the socket", async () => {
  const f = await session();
  await f.client.subscribeResource({ uri: URI });
  await until(() => f.stub.events.connected(f.stream), "the subscription is connected");
  await f.client.unsubscribeResource({ uri: URI });
  await until(() => !f.stub.events.connected(f.stream), "unsubscribing closes the socket");
  assert.equal((await readResource(f)).subscribed, false);

  await f.client.subscribeResource({ uri: URI });
  await until(() => f.stub.events.connected(f.stream), "subscribed again");
  await f.client.close();
  await until(() => !f.stub.events.connected(f.stream), "the session's end closes the socket");
  await f[Symbol.asyncDispose]();
});

Deno.test("read-only mode keeps the stream; leaving out read_event_stream removes the resource", async () => {
  await using readOnly = await session({ selection: { readOnly: true } });
  assert.deepEqual(readOnly.client.getServerCapabilities()?.resources, { subscribe: true });
  const { resources } = await readOnly.client.listResources();
  assert.deepEqual(resources.map((r: { uri: string }) => r.uri), [URI]);

  await using without = await session({ selection: { excludeTools: ["read_event_stream"] } });
  assert.equal(without.client.getServerCapabilities()?.resources, undefined);
  await assert.rejects(without.client.listResources(), /Method not found/);
});

Deno.test("parallel subscribes share one connection and one notification an event; unsubscribing closes it", async () => {
  await using f = await session();
  await Promise.all([1, 2, 3].map(() => f.client.subscribeResource({ uri: URI })));
  await until(() => f.stub.events.connected(f.stream), "the subscription is connected");
  inject(f, 1);
  await until(() => f.updates() >= 1, "the client is told of the event");
  await settle(300);
  assert.equal(f.updates(), 1, "one notification for one event");
  assert.equal(f.stub.events.connections(f.stream), 1, "one connection for the three subscribes");
  assert.deepEqual(await readResource(f).then(ordinals), [1]);

  await f.client.unsubscribeResource({ uri: URI });
  await until(() => !f.stub.events.connected(f.stream), "unsubscribing closes the socket");
  await settle(600);
  assert.equal(f.stub.events.connected(f.stream), false, "nothing reconnects");
  assert.equal(f.stub.events.connections(f.stream), 1, "no connection was made since");
});

Deno.test("ending the session after parallel subscribes leaves no socket behind", async () => {
  const f = await session();
  await Promise.all([1, 2, 3].map(() => f.client.subscribeResource({ uri: URI })));
  await until(() => f.stub.events.connected(f.stream), "the subscription is connected");
  await settle(300);
  const connections = f.stub.events.connections(f.stream);
  await f.client.close();
  await until(() => !f.stub.events.connected(f.stream), "the session's end closes the socket");
  await settle(600);
  assert.equal(f.stub.events.connected(f.stream), false, "nothing reconnects");
  assert.equal(f.stub.events.connections(f.stream), connections, "no connection was made since");
  await f[Symbol.asyncDispose]();
});

Deno.test("max_events: 1 returns exactly one event, and next continues after it", async () => {
  await using f = await session();
  const total = 20;
  for (let n = 1; n <= total; n++) inject(f, n);
  const msg = await f.read({ from_ordinal: 0, max_events: 1 });
  assert.deepEqual(ordinals(msg), [1]);
  assert.equal(msg.count, 1);
  assert.equal(msg.stopped_by, "max_events");
  assert.deepEqual(msg.next, { from_ordinal: 1 });
  assert.deepEqual(await f.read({ ...msg.next, max_events: 1 }).then(ordinals), [2]);
});

Deno.test("timeout_s caps the whole read: the wait ends at the smaller of timeout_s and wait_s", async () => {
  await using f = await session();
  inject(f, 1);
  const started = Date.now();
  const capped = await f.read({ from_ordinal: 0, timeout_s: 0.3, wait_s: 10 });
  const took = Date.now() - started;
  assert.equal(capped.stopped_by, "timeout_s");
  assert.deepEqual(ordinals(capped), [1]);
  assert.ok(took < 8000, `the read returned before wait_s (took ${took} ms)`);
  const waited = await f.read({ ...capped.next, timeout_s: 10, wait_s: 0.3 });
  assert.equal(waited.stopped_by, "wait_s");
});

Deno.test("from_datetime must be ISO 8601 with a zone: other dates are refused, naming the parameter", async () => {
  await using f = await session();
  const refused = [
    "1",
    "Tue Mar 01 2022",
    "2026-05-01T09:00:00",
    "2026-05-01",
    "2026-13-01T09:00Z",
  ];
  for (const from_datetime of refused) {
    const result = await f.call("read_event_stream", { from_datetime });
    assert.equal(result.isError, true, from_datetime);
    assert.match(
      String((result.structuredContent as { msg: Msg }).msg.error),
      /^Cannot read_event_stream: invalid input: from_datetime: must be an ISO 8601 date-time with a zone .*e\.g\. 2026-05-01T09:00:00Z/,
    );
  }
  assert.equal(f.stub.requests.length, 0, "no request reached the stub");
  assert.equal(f.stub.events.connections(f.stream), 0, "no socket was opened");

  inject(f, 1, 2);
  const first = f.stub.events.events(f.stream)[0]!.timestamp;
  const offset = new Date(first + 2 * 3600_000).toISOString().replace("Z", "+02:00");
  assert.deepEqual(await f.read({ from_datetime: offset }).then(ordinals), [1, 2]);
});

Deno.test("messages that are not events are counted as unparsed, by a read and by the resource", async () => {
  await using f = await session();
  const reading = f.read({ wait_s: 1 });
  await until(() => f.stub.events.connected(f.stream), "the read is connected");
  const garbage = ["not an event", "{ broken json", '{"message_type": "x"}'];
  for (const text of garbage) assert.ok(f.stub.events.sendRaw(f.stream, text));
  inject(f, 1);
  const msg = await reading;
  assert.deepEqual(ordinals(msg), [1]);
  assert.equal(msg.unparsed, garbage.length);
  assert.equal((await f.read(msg.next)).unparsed, undefined, "none this time: not reported");

  await f.client.subscribeResource({ uri: URI });
  await until(() => f.stub.events.connected(f.stream), "the subscription is connected");
  for (const text of garbage) assert.ok(f.stub.events.sendRaw(f.stream, text));
  inject(f, 2);
  await until(() => f.updates() >= 1, "the client is told of the event");
  const read = await readResource(f);
  assert.deepEqual(ordinals(read), [2]);
  assert.equal(read.unparsed, garbage.length);
  assert.equal((await readResource(f)).unparsed, undefined, "counted once");
});

Deno.test("a stateless HTTP server offers the resource without subscribe, and refuses a subscribe", async () => {
  await using http = await openEndpoint({ stateless: true });
  const client = await http.connect(http.stub.tokens.alice);
  assert.deepEqual(client.getServerCapabilities()?.resources, {});
  const { resources } = await client.listResources();
  assert.deepEqual(resources.map((r: { uri: string }) => r.uri), [URI]);
  assert.match(String(resources[0]?.description), /stateless, so it holds no subscription/);
  const { contents } = await client.readResource({ uri: URI });
  const read = JSON.parse(String((contents[0] as { text: string }).text));
  assert.match(read.hint, /^Call read_event_stream: this server is stateless/);
  await assert.rejects(
    client.subscribeResource({ uri: URI }),
    /Cannot subscribe: this server is stateless.*read_event_stream/,
  );
});

Deno.test("deno task start --stateless advertises the resource without subscribe", async () => {
  const stub = await startStub();
  try {
    await using server = await servingWith({
      env: { SQUONK2_ASAPI_URL: stub.url },
      args: ["--stateless"],
    });
    const response = await fetch(server.url, {
      method: "POST",
      headers: {
        authorization: `Bearer ${stub.tokens.alice}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify(initializeRequest()),
    });
    const { result } = await response.json();
    assert.deepEqual(result.capabilities.resources, {});
  } finally {
    await stub.shutdown();
  }
});
