/**
 * Helpers shared by the tests: the seeded ids of a stub, a user's tokens from the stub's Keycloak,
 * and a self-signed certificate made with WebCrypto (no openssl needed) for the HTTPS tests.
 *
 * @module
 */
import { KEYCLOAK_SEED, type StubServer } from "../src/stub/mod.ts";

export { initializeRequest } from "../testing/mod.ts";

/** The ids the stub's seed data creates, looked up by name. */
export interface SeedIds {
  defaultOrg: string;
  org: string;
  unit: string;
  alicePersonalUnit: string;
  storageProduct: string;
  tierProduct: string;
  aliceAsset: string;
  unitAsset: string;
  globalAsset: string;
  bobStream: number;
}

/** Finds the seeded ids in a stub's state. */
export function seedIds(stub: StubServer): SeedIds {
  const s = stub.state;
  const find = <T extends { id: unknown }>(items: Iterable<T>, test: (item: T) => boolean) => {
    const found = [...items].find(test);
    if (!found) throw new Error("seed data changed: an expected record is missing");
    return found.id as T["id"];
  };
  return {
    defaultOrg: s.defaultOrgId,
    org: find(s.orgs.values(), (o) => o.name === "Informatics Matters"),
    unit: find(s.units.values(), (u) => u.name === "Chemistry"),
    alicePersonalUnit: find(s.units.values(), (u) => u.personal && u.owner_id === "alice"),
    storageProduct: find(s.products.values(), (p) => p.name === "Chemistry storage"),
    tierProduct: find(s.products.values(), (p) => p.name === "Chemistry project"),
    aliceAsset: find(s.assets.values(), (a) => a.name === "api-key"),
    unitAsset: find(s.assets.values(), (a) => a.name === "default-queue"),
    globalAsset: find(s.assets.values(), (a) => a.name === "motd"),
    bobStream: find(s.streams.values(), (e) => e.owner === "bob"),
  };
}

// A minimal DER writer: just what an X.509 v3 certificate needs.

function der(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const head = length < 0x80
    ? [tag, length]
    : length < 0x100
    ? [tag, 0x81, length]
    : [tag, 0x82, length >> 8, length & 0xff];
  const out = new Uint8Array(head.length + length);
  out.set(head);
  let at = head.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const seq = (...parts: Uint8Array[]) => der(0x30, ...parts);

function integer(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.slice(start);
  return der(0x02, trimmed[0]! & 0x80 ? new Uint8Array([0, ...trimmed]) : trimmed);
}

function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const bytes = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let rest = arc >> 7; rest > 0; rest >>= 7) chunk.unshift((rest & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, new Uint8Array(bytes));
}

function utcTime(date: Date): Uint8Array {
  const text = date.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z";
  return der(0x17, new TextEncoder().encode(text));
}

function pem(label: string, bytes: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...bytes)).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${base64.trim()}\n-----END ${label}-----\n`;
}

/** A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost, valid for a day. */
export async function selfSignedCertificate(): Promise<{ cert: string; key: string }> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const ecdsaSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const name = seq(
    der(0x31, seq(oid("2.5.4.3"), der(0x0c, new TextEncoder().encode("squonk2-as-mcp test")))),
  );
  const subjectAltName = seq(
    der(0x82, new TextEncoder().encode("localhost")),
    der(0x87, new Uint8Array([127, 0, 0, 1])),
  );
  const now = Date.now();
  const tbs = seq(
    der(0xa0, integer(new Uint8Array([2]))),
    integer(crypto.getRandomValues(new Uint8Array(16))),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + 86_400_000))),
    name,
    spki,
    der(0xa3, seq(seq(oid("2.5.29.17"), der(0x04, subjectAltName)))),
  );
  const raw = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      tbs as Uint8Array<ArrayBuffer>,
    ),
  );
  const signature = seq(integer(raw.slice(0, 32)), integer(raw.slice(32)));
  const certificate = seq(tbs, ecdsaSha256, der(0x03, new Uint8Array([0]), signature));
  return { cert: pem("CERTIFICATE", certificate), key: pem("PRIVATE KEY", pkcs8) };
}

/** `user`'s access and refresh tokens from the stub Keycloak's password grant in `realm`. */
export async function passwordToken(
  stub: StubServer,
  user: string,
  realm: string = KEYCLOAK_SEED.realm,
): Promise<{ access: string; refresh: string }> {
  const response = await fetch(
    `${stub.keycloak.url}/realms/${realm}/protocol/openid-connect/token`,
    {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "password",
        client_id: KEYCLOAK_SEED.clientId,
        username: user,
        password: KEYCLOAK_SEED.passwords[user]!,
      }),
    },
  );
  const body = await response.json();
  return { access: body.access_token as string, refresh: body.refresh_token as string };
}
