import assert from "node:assert/strict";
import { AsApi } from "../src/api/mod.ts";
import { PROCESSING_CHARGE, startStub, STUB_ACTION, type StubServer } from "../src/stub/mod.ts";
import { seedIds } from "./_helpers.ts";

/** What a socket received before it closed or `count` messages came. */
interface Received {
  messages: string[];
  close?: { code: number; reason: string };
}

function listen(url: string, count = Infinity): { done: Promise<Received>; socket: WebSocket } {
  const socket = new WebSocket(url);
  const received: Received = { messages: [] };
  const done = new Promise<Received>((resolve) => {
    socket.onmessage = (event) => {
      received.messages.push(String(event.data));
      if (received.messages.length >= count) {
        socket.close();
        resolve(received);
      }
    };
    socket.onclose = (event) => {
      received.close = { code: event.code, reason: event.reason };
      resolve(received);
    };
  });
  return { done, socket };
}

async function opened(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.OPEN) return;
  await new Promise((resolve) => socket.addEventListener("open", resolve, { once: true }));
}

/** A stub that shuts down when the test's scope ends. */
async function runningStub(): Promise<StubServer & AsyncDisposable> {
  const stub = await startStub();
  return Object.assign(stub, { [Symbol.asyncDispose]: () => stub.shutdown() });
}

function streamOf(stub: StubServer, owner: string) {
  const stream = [...stub.state.streams.values()].find((s) => s.owner === owner);
  assert.ok(stream, `${owner} has a stream`);
  return stream;
}

Deno.test("get_event_stream answers with a ws:// location on the stub's own port", async () => {
  await using stub = await runningStub();
  const rv = await new AsApi({ url: stub.url }).call("get_event_stream", {}, {
    token: stub.tokens.alice,
  });
  const port = new URL(stub.url).port;
  assert.match(
    String(rv.msg.location),
    new RegExp(`^ws://127\\.0\\.0\\.1:${port}/event-stream/[0-9a-f-]{36}$`),
  );
});

Deno.test("a stub action reaches its user's JSON_STRING stream with ordinal and timestamps", async () => {
  await using stub = await runningStub();
  const ids = seedIds(stub);
  const { done, socket } = listen(streamOf(stub, "alice").location, 1);
  await opened(socket);
  const before = Date.now();
  await new AsApi({ url: stub.url }).call("create_unit", {
    org_id: ids.org,
    unit_name: "Biology",
    billing_day: 4,
  }, { token: stub.tokens.alice });
  const [text] = (await done).messages;
  const message = JSON.parse(text!);
  assert.equal(message.message_type, STUB_ACTION);
  assert.equal(message.message_body.action, "create_unit");
  assert.equal(message.message_body.username, "alice");
  assert.match(message.message_body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(message.ess_ordinal, stub.events.events(streamOf(stub, "alice").id).at(-1)!.ordinal);
  assert.ok(message.ess_timestamp >= before, "ess_timestamp is milliseconds since the epoch");
});

Deno.test("a PROTOCOL_STRING stream sends text with |ordinal and |timestamp appended", async () => {
  await using stub = await runningStub();
  const ids = seedIds(stub);
  const api = new AsApi({ url: stub.url });
  const token = stub.tokens.alice;
  await api.call("delete_event_stream", { event_stream_id: streamOf(stub, "alice").id }, { token });
  const rv = await api.call("create_event_stream", { event_format: "PROTOCOL_STRING" }, { token });
  const { done, socket } = listen(String(rv.msg.location), 1);
  await opened(socket);
  stub.events.charge(ids.tierProduct, { coins: "1.50", name: "docking" });
  const [text] = (await done).messages;
  const event = stub.events.events(Number(rv.msg.id))[0]!;
  assert.equal(
    text,
    `${PROCESSING_CHARGE}|timestamp: "${event.body.timestamp}" merchant_kind: "DATA_MANAGER" ` +
      `merchant_name: "Squonk2 Data Manager" merchant_id: 1 auth_code: ${event.body.auth_code} ` +
      `name: "docking" coins: "1.50" sqn: 1 eoc: true product: "${ids.tierProduct}" ` +
      `unit: "${ids.unit}" organisation: "${ids.org}"|ordinal: 1|timestamp: ${event.timestamp}`,
  );
});

Deno.test("stream_from_ordinal replays exactly the events after that ordinal", async () => {
  await using stub = await runningStub();
  const { id, location } = streamOf(stub, "bob");
  for (const n of [1, 2, 3, 4]) stub.events.inject(id, "test.Event", { n });
  const { done } = listen(`${location}?stream_from_ordinal=2`, 2);
  const ordinals = (await done).messages.map((m) => JSON.parse(m).ess_ordinal);
  assert.deepEqual(ordinals, [3, 4]);
});

Deno.test("stream_from_ordinal=0 replays from the first event the stream still holds", async () => {
  await using stub = await runningStub();
  const { id, location } = streamOf(stub, "bob");
  for (const n of [1, 2, 3]) stub.events.inject(id, "test.Event", { n });
  stub.events.expire(id, 1);
  const { done } = listen(`${location}?stream_from_ordinal=0`, 2);
  assert.deepEqual((await done).messages.map((m) => JSON.parse(m).ess_ordinal), [2, 3]);
});

Deno.test("stream_from_timestamp replays the events stamped at or after it", async () => {
  await using stub = await runningStub();
  const { id, location } = streamOf(stub, "bob");
  const stamps = [1, 2, 3].map((n) => stub.events.inject(id, "test.Event", { n }).timestamp);
  const { done } = listen(`${location}?stream_from_timestamp=${stamps[1]}`, 2);
  assert.deepEqual((await done).messages.map((m) => JSON.parse(m).message_body.n), [2, 3]);
});

Deno.test("stream_from_datetime without a zone is read as UTC", async () => {
  await using stub = await runningStub();
  const { id, location } = streamOf(stub, "bob");
  const first = stub.events.inject(id, "test.Event", { n: 1 });
  const datetime = new Date(first.timestamp + 1000).toISOString().slice(0, 19);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  stub.events.inject(id, "test.Event", { n: 2 });
  const { done } = listen(`${location}?stream_from_datetime=${datetime}`, 1);
  assert.deepEqual((await done).messages.map((m) => JSON.parse(m).message_body.n), [2]);
});

Deno.test("two stream_from_ parameters close the socket with the service's reason", async () => {
  await using stub = await runningStub();
  const { location } = streamOf(stub, "bob");
  const { done } = listen(`${location}?stream_from_ordinal=1&stream_from_timestamp=5`);
  assert.deepEqual((await done).close, {
    code: 1002,
    reason: "Cannot provide more than one 'stream_from_' variable",
  });
});

Deno.test("a socket with no stream_from_ parameter gets only new events", async () => {
  await using stub = await runningStub();
  const { id, location } = streamOf(stub, "bob");
  stub.events.inject(id, "test.Event", { n: 1 });
  const { done, socket } = listen(location, 1);
  await opened(socket);
  stub.events.inject(id, "test.Event", { n: 2 });
  assert.deepEqual((await done).messages.map((m) => JSON.parse(m).message_body.n), [2]);
});

Deno.test("an unknown stream uuid closes the socket, saying so", async () => {
  await using stub = await runningStub();
  const url = `${stub.origin.replace("http", "ws")}/event-stream/no-such-uuid`;
  assert.deepEqual((await listen(url).done).close, {
    code: 1000,
    reason: "Connect for unknown EventStream no-such-uuid",
  });
});

Deno.test("a new connection to a stream replaces the older one", async () => {
  await using stub = await runningStub();
  const { id, location } = streamOf(stub, "bob");
  const older = listen(location);
  await opened(older.socket);
  const newer = listen(location, 1);
  await opened(newer.socket);
  assert.deepEqual((await older.done).close, {
    code: 1000,
    reason: "Replaced by a newer connection to the stream",
  });
  stub.events.inject(id, "test.Event", { n: 1 });
  assert.equal((await newer.done).messages.length, 1);
  assert.equal(stub.events.connections(id), 2);
});

Deno.test("a charge reaches the members of the product's unit, not bob", async () => {
  await using stub = await runningStub();
  const ids = seedIds(stub);
  stub.events.charge(ids.storageProduct, { coins: "0.25" });
  assert.deepEqual(stub.events.events(streamOf(stub, "alice").id).map((e) => e.type), [
    PROCESSING_CHARGE,
  ]);
  assert.deepEqual(stub.events.events(ids.bobStream), []);
});

Deno.test("with demoData, admin's and alice's streams start with three charges; without, empty", async () => {
  const sample = await startStub({ demoData: true });
  const plain = await startStub();
  try {
    const streamOf = (stub: StubServer, user: string) =>
      [...stub.state.streams.values()].find((s) => s.owner === user)!.id;
    const alice = (stub: StubServer) => streamOf(stub, "alice");
    assert.equal(sample.events.events(streamOf(sample, "admin")).length, 3);
    const events = sample.events.events(alice(sample));
    assert.deepEqual(events.map((e) => e.type), [
      PROCESSING_CHARGE,
      PROCESSING_CHARGE,
      PROCESSING_CHARGE,
    ]);
    assert.deepEqual(events.map((e) => e.body.coins), ["12", "40", "3"]);
    assert.deepEqual(plain.events.events(alice(plain)), []);
  } finally {
    await sample.shutdown();
    await plain.shutdown();
  }
});
