/**
 * The event reader's parts: both message formats, the ordinal tracker, and the TLS setting of
 * the socket itself.
 */
import assert from "node:assert/strict";
import { OrdinalTracker, parseEvent, readEvents, type StreamEvent } from "../src/mcp/events.ts";
import { startStub } from "../src/stub/mod.ts";
import { selfSignedCertificate } from "./_helpers.ts";

Deno.test("a JSON_STRING message becomes an event with its ordinal, time, type and body", () => {
  const text = JSON.stringify({
    message_type: "accountserver.MerchantProcessingCharge",
    message_body: { timestamp: "2025-04-30T19:20:37.926+00:00", coins: "0.50" },
    ess_ordinal: 2,
    ess_timestamp: 1746042171620,
  });
  assert.deepEqual(parseEvent(text), {
    ordinal: 2,
    timestamp: 1746042171620,
    time: "2025-04-30T19:42:51.620Z",
    type: "accountserver.MerchantProcessingCharge",
    body: { timestamp: "2025-04-30T19:20:37.926+00:00", coins: "0.50" },
  });
});

Deno.test("a PROTOCOL_STRING message becomes an event whose flat fields are parsed", () => {
  const text =
    'accountserver.MerchantProcessingCharge|timestamp: "2025-04-30T19:20:37.926+00:00" ' +
    'merchant_kind: "DATA_MANAGER" merchant_id: 1 eoc: true name: "a \\"b\\" |c"' +
    "|ordinal: 2|timestamp: 1746042171620";
  assert.deepEqual(parseEvent(text)?.body, {
    timestamp: "2025-04-30T19:20:37.926+00:00",
    merchant_kind: "DATA_MANAGER",
    merchant_id: 1,
    eoc: true,
    name: 'a "b" |c',
  });
  const nested = "x.Y|inner { a: 1 }|ordinal: 3|timestamp: 5";
  assert.equal(parseEvent(nested)?.body, "inner { a: 1 }", "not flat: kept as text");
  assert.equal(parseEvent("POISON"), undefined);
});

Deno.test("the tracker drops repeats and counts the ordinals skipped", () => {
  const at = (ordinal: number) => ({ ordinal } as StreamEvent);
  // A service that replays from the ordinal itself sends 5 again: it is not new.
  const tracker = new OrdinalTracker(5);
  assert.deepEqual([5, 6, 9, 9, 10].map((n) => tracker.accept(at(n))), [
    false,
    true,
    true,
    false,
    true,
  ]);
  assert.equal(tracker.lost, 2, "7 and 8");
  assert.equal(tracker.last, 10);
});

Deno.test("a wss socket is verified unless the setting says not to", async () => {
  const stub = await startStub(await selfSignedCertificate());
  try {
    const stream = [...stub.state.streams.values()].find((s) => s.owner === "bob")!;
    stub.events.inject(stream.id, "test.Event", { n: 1 });
    const options = { cursor: { from_ordinal: 0 }, maxEvents: 1, waitS: 2, maxBytes: 65536 };
    await assert.rejects(readEvents(stream.location, { ...options, verifyTls: true }));
    assert.equal(stub.events.connections(stream.id), 0, "no socket opened on an untrusted one");
    const read = await readEvents(stream.location, { ...options, verifyTls: false });
    assert.deepEqual(read.events.map((e) => e.body), [{ n: 1 }]);
    assert.equal(read.stop, "max_events");
  } finally {
    await stub.shutdown();
  }
});
