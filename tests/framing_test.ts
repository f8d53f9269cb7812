/**
 * Where the TCP front sees a request body end: it must agree with the server on every body an
 * honest client sends, and refuse framing the server would refuse, or read two ways.
 */
import assert from "node:assert/strict";
import { bodyEnd } from "../src/mcp/_framing.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const head = (...fields: string[]) => bytes(`POST /mcp HTTP/1.1\r\n${fields.join("\r\n")}\r\n\r\n`);

/** Feeds `pieces` in turn; the index of the piece at which the body ended, or -1. */
function endsAt(fields: string[], pieces: string[]): number {
  const end = bodyEnd(head(...fields));
  if ("refuse" in end) throw new Error(end.refuse);
  for (const [i, piece] of pieces.entries()) if (end.feed(bytes(piece))) return i;
  return -1;
}

Deno.test("a Content-Length body ends after that many bytes, however it is split", () => {
  assert.equal(endsAt(["Content-Length: 10"], ["12345", "6789", "0"]), 2);
  assert.equal(endsAt(["Content-Length: 10"], ["123456789"]), -1);
  assert.equal(endsAt(["Content-Length: 0"], [""]), 0);
  assert.equal(endsAt([], [""]), 0, "no length and no chunking: no body");
});

Deno.test("a chunked body ends at its last chunk and trailers, however it is split", () => {
  const te = ["Transfer-Encoding: chunked"];
  assert.equal(endsAt(te, ["5\r\nhello\r\n0\r\n\r\n"]), 0);
  assert.equal(endsAt(te, ["5\r\nhel", "lo\r", "\n0\r\n", "\r\n"]), 3);
  assert.equal(endsAt(te, ["5;ext=1\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\n"]), 0);
  assert.equal(endsAt(te, ["0005 \r\nhello\r\n000\r\n\r\n"]), 0, "leading zeros, a space");
  assert.equal(endsAt(te, ["5\r\nhello\r\n0\r\n"]), -1, "no empty line after the last chunk yet");
  assert.equal(endsAt(te, ["5\nhello\r\n0\r\n\r\n"]), -1, "a bare LF never ends a body");
  assert.equal(endsAt(te, ["z\r\n"]), -1, "a size that is not hex never ends");
});

Deno.test("framing read two ways, or not at all, is refused with 400", () => {
  const refused = (...fields: string[]) => {
    const end = bodyEnd(head(...fields));
    return "refuse" in end ? end.refuse : "accepted";
  };
  assert.equal(refused("Content-Length: 5", "Transfer-Encoding: chunked"), "400 Bad Request");
  assert.equal(refused("Transfer-Encoding: gzip"), "400 Bad Request");
  assert.equal(refused("Transfer-Encoding: chunked, gzip"), "400 Bad Request");
  assert.equal(refused("Content-Length: 5", "Content-Length: 6"), "400 Bad Request");
  assert.equal(refused("Content-Length: -1"), "400 Bad Request");
  assert.equal(refused("Content-Length: 5", "Content-Length: 5"), "accepted");
  assert.equal(refused("transfer-encoding: Chunked"), "accepted");
});
