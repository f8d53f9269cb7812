/**
 * A stub Squonk2 Account Server: a real HTTP(S) server whose routes are the operation table's,
 * with in-memory state and the real API's rules. It records every request it receives and can be
 * told to misbehave per route, so tests can see exactly what a client sent and how it copes.
 *
 * @example
 * ```ts
 * const stub = await startStub();
 * const api = new AsApi({ url: stub.url });
 * await api.call("get_account", {}, { token: stub.tokens.alice });
 * console.log(stub.requests.at(-1)?.path); // "/user/account"
 * await stub.shutdown();
 * ```
 *
 * @module
 */
import { type Operation, OPERATIONS } from "../api/operations.ts";

type Row = (typeof OPERATIONS)[number];
import { type Context, HANDLERS } from "./_routes.ts";
import { HttpError, SEED_USERS, StubState, type User } from "./_state.ts";
import { KEYCLOAK_SEED, type MintOptions, StubKeycloak, type TokenRequest } from "./_keycloak.ts";
import { addDemoData, publishDemoEvents } from "./_demo.ts";
import { StubEventStreams } from "./_events.ts";
import { type RegisteredClient, StubOAuth } from "./_oauth.ts";

export { SEED_USERS, StubState } from "./_state.ts";
export { KEYCLOAK_SEED, type MintOptions, type TokenRequest } from "./_keycloak.ts";
export type { RegisteredClient } from "./_oauth.ts";
export {
  encode as encodeStubEvent,
  PROCESSING_CHARGE,
  STUB_ACTION,
  type StubEvent,
  StubEventStreams,
} from "./_events.ts";

/** How to start a stub. */
export interface StubOptions {
  /** Default `127.0.0.1`. */
  hostname?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Serve HTTPS with this PEM certificate and key. */
  cert?: string;
  key?: string;
  /** The path the API is served under, as on a real deployment. */
  basePath?: string;
  /** The clock, for stable charges. */
  now?: () => Date;
  /** How long the stub Keycloak's access tokens live, in seconds (default 300). */
  tokenLifetimeS?: number;
  /** The user the stub Keycloak's authorization endpoint signs in (default `alice`). */
  signInAs?: string;
  /**
   * Add the demo's data beyond the seed (more Organisations, an "Evaluation" Unit, attached
   * Assets) and start the event streams with three processing charges. Tests leave it off.
   */
  demoData?: boolean;
}

/** A request as the stub received it. */
export interface RecordedRequest {
  method: string;
  /** The path below the base path, as sent (still percent-encoded). */
  path: string;
  query: Record<string, string>;
  /** The `Authorization` header, or null. */
  authorization: string | null;
  contentType: string | null;
  /** Decoded JSON, or form fields (file parts as `{ filename, content }`), or raw text. */
  body: unknown;
  /**
   * The operation the request belongs to, if any. Where two operations send the same request
   * (the table's `sameRequestAs`), it is the one named there: `get_version` for `GET /version`,
   * `get_available_units` for `GET /unit` without `name`.
   */
  operation: string | undefined;
}

/** How a route misbehaves. */
export interface Fault {
  /** Wait this long before answering (or before the other faults). */
  delayMs?: number;
  /** Answer with this status and `body` instead of handling the request. */
  status?: number;
  body?: string;
  contentType?: string;
  /** Extra response headers with `status`, e.g. a `location` for a redirect. */
  headers?: Record<string, string>;
  /** Start a 200 response and drop the connection in the middle of its body. */
  drop?: boolean;
  /** Handle the request for real (a create is applied), then drop the connection mid-answer. */
  dropAfterApplying?: boolean;
  /** How many requests it applies to (default: all until cleared). */
  times?: number;
}

/** A running stub. */
export interface StubServer {
  /** The API's base URL, e.g. `http://127.0.0.1:41234/account-server-api`. */
  url: string;
  /** The server's origin, e.g. `http://127.0.0.1:41234`. */
  origin: string;
  /** Bearer tokens of the seeded users. */
  tokens: { admin: string; alice: string; bob: string };
  /** Every request received, oldest first (token requests are in `keycloak.requests`). */
  requests: RecordedRequest[];
  /** The Keycloak-compatible token endpoint: its base URL, realm, client and requests. */
  keycloak: {
    url: string;
    realm: string;
    clientId: string;
    clientSecret: string;
    requests: TokenRequest[];
    /** The issuer of the realm's tokens, as its OpenID configuration says. */
    issuer: string;
    /** How many times each realm's JWKS was fetched. */
    jwksFetches: Map<string, number>;
    /** A token for `username` signed by the realm's key, with claims a test chooses. */
    mint(username: string, options?: MintOptions): Promise<string>;
    /** Signs new tokens with a new key; older keys stay published unless `retire` is true. */
    rotateKeys(options?: { retire?: boolean }): Promise<void>;
    /** Makes every Keycloak endpoint answer 503 until set back to false. */
    setDown(down: boolean): void;
    /** Invalidates every token issued so far, as if they had all expired. */
    revokeAll(): void;
    /** Clients registered through dynamic client registration, by id. */
    clients: Map<string, RegisteredClient>;
    /** Makes the authorization endpoint sign in `username` from now on. */
    signInAs(username: string): void;
  };
  /** The in-memory world, for assertions. */
  state: StubState;
  /** The event-stream service (WebSockets at `ws[s]://host:port/event-stream/<uuid>`). */
  events: StubEventStreams;
  /**
   * Makes the requests of operation `name` misbehave. An operation whose every request is another
   * one's (`ping`, which sends `get_version`'s) is refused: inject on that other one.
   */
  inject(name: string, fault: Fault): void;
  /** Removes every fault. */
  clearFaults(): void;
  /** Stops the server, cutting short any delayed answer. */
  shutdown(): Promise<void>;
}

interface Route {
  row: Row;
  pattern: RegExp;
  names: string[];
}

const ANONYMOUS: User = { id: "", admin: false };

function compileRoutes(): Route[] {
  return OPERATIONS.filter((row) => !isAlwaysAlias(row)).map((row) => {
    const names: string[] = [];
    const source = row.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      names.push(name);
      return "([^/]+)";
    });
    return { row, pattern: new RegExp(`^${source}$`), names };
  });
}

const ROUTES = compileRoutes();

/** Whether every request of `row` is another operation's. */
function isAlwaysAlias(row: Operation): boolean {
  return row.sameRequestAs !== undefined && row.sameRequestAs.unlessQuery === undefined;
}

/**
 * The route a request belongs to: of the operations with its method and path, the one it is not
 * an alias of another for (`GET /unit?name=x` is `get_units`, `GET /unit` `get_available_units`).
 */
function findRoute(method: string, path: string, query: URLSearchParams): Route | undefined {
  const routes = ROUTES.filter((r) => r.row.method === method && r.pattern.test(path));
  const claimed = (r: Route) => r.row.sameRequestAs?.unlessQuery?.some((key) => query.has(key));
  return routes.find(claimed) ?? routes.find((r) => r.row.sameRequestAs === undefined);
}

function json(status: number, body: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: body === undefined ? {} : { "content-type": "application/json" },
  });
}

async function readBody(request: Request): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!request.body) return undefined;
  if (type.startsWith("multipart/form-data")) {
    const form = await request.formData();
    const fields: Record<string, unknown> = {};
    for (const [key, value] of form) {
      fields[key] = typeof value === "string"
        ? value
        : { filename: value.name, content: await value.text() };
    }
    return fields;
  }
  const text = await request.text();
  if (!text) return undefined;
  if (type.includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return { invalidJson: text };
    }
  }
  return text;
}

/** What the stub's request handling works with. */
interface Stub {
  state: StubState;
  basePath: string;
  requests: RecordedRequest[];
  faults: Map<string, Fault>;
  stopping: AbortController;
  keycloak: StubKeycloak;
  events: StubEventStreams;
  oauth: StubOAuth;
}

function makeStub(options: StubOptions): Stub {
  const state = new StubState(options.now);
  // Before the event streams listen: the demo's data is seed data, not events.
  if (options.demoData) addDemoData(state);
  const keycloak = new StubKeycloak(options.tokenLifetimeS ?? 300);
  return {
    state,
    basePath: options.basePath ?? "/account-server-api",
    requests: [],
    faults: new Map(),
    stopping: new AbortController(),
    keycloak,
    events: new StubEventStreams(state),
    oauth: new StubOAuth({
      realms: [KEYCLOAK_SEED.realm, KEYCLOAK_SEED.foreignRealm],
      issuer: (realm) => keycloak.issuer(realm),
      mint: (username, options) => keycloak.mint(username, options as MintOptions),
      lifetimeS: options.tokenLifetimeS ?? 300,
      audience: KEYCLOAK_SEED.clientId,
      requests: keycloak.requests,
      user: options.signInAs ?? "alice",
    }),
  };
}

/** Keycloak (sign-in first), the event-stream sockets, then the Account Server. */
async function handle(stub: Stub, request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (stub.keycloak.serves(url.pathname) || stub.oauth.serves(url.pathname)) {
    // Sign-in first (it leaves the other grants to the realm); an outage answers for both.
    const signIn = stub.keycloak.down ? undefined : await stub.oauth.handle(request);
    if (signIn) return signIn;
    return await stub.keycloak.handle(request);
  }
  if (StubEventStreams.matches(url.pathname)) {
    const upgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
    return upgrade ? stub.events.connect(request) : json(426, { error: "Upgrade to a WebSocket" });
  }
  if (!url.pathname.startsWith(`${stub.basePath}/`)) return json(404, { error: "Not found" });
  return await handleAccountServer(stub, request, url);
}

/** An Account Server request: recorded, routed, and answered or faulted. */
async function handleAccountServer(stub: Stub, request: Request, url: URL): Promise<Response> {
  const path = url.pathname.slice(stub.basePath.length);
  const route = findRoute(request.method, path, url.searchParams);
  const body = await readBody(request);
  stub.requests.push({
    method: request.method,
    path,
    query: Object.fromEntries(url.searchParams),
    authorization: request.headers.get("authorization"),
    contentType: request.headers.get("content-type"),
    body,
    operation: route?.row.name,
  });
  if (!route) {
    const known = ROUTES.some((r) => r.pattern.test(path));
    return json(known ? 405 : 404, { error: known ? "Method not allowed" : "Not found" });
  }
  const fault = stub.faults.get(route.row.name);
  if (fault) {
    if (fault.times !== undefined && --fault.times <= 0) stub.faults.delete(route.row.name);
    if (fault.dropAfterApplying) {
      await answer(stub, route, path, url, request, body).body?.cancel();
      return droppedResponse();
    }
    const faulty = await applyFault(fault, stub.stopping.signal);
    if (faulty) return faulty;
  }
  return answer(stub, route, path, url, request, body);
}

function answer(
  stub: Stub,
  route: Route,
  path: string,
  url: URL,
  request: Request,
  body: unknown,
): Response {
  try {
    const user = route.row.token
      ? stub.state.userForToken(
        bearer(request.headers.get("authorization")),
        (t) => stub.keycloak.userOf(t),
      )
      : ANONYMOUS;
    checkEncoding(route.row, request.headers.get("content-type"), body);
    const match = route.pattern.exec(path)!;
    const params: Record<string, string> = {};
    route.names.forEach((name, i) => params[name] = decodeURIComponent(match[i + 1]!));
    const ctx: Context = {
      state: stub.state,
      user,
      path: params,
      query: url.searchParams,
      body: (body ?? {}) as Record<string, unknown>,
    };
    const reply = HANDLERS[route.row.name](ctx);
    return json(reply.status, reply.body);
  } catch (error) {
    if (error instanceof HttpError) return json(error.status, { error: error.message });
    if (error instanceof URIError) return json(400, { error: "Malformed path parameter" });
    return json(500, { error: `Stub failure: ${String(error)}` });
  }
}

/** The stub's face for its users: URLs, tokens, what it recorded, and its controls. */
function serverOf(stub: Stub, origin: string, server: Deno.HttpServer): StubServer {
  const { keycloak, oauth, faults } = stub;
  return {
    url: `${origin}${stub.basePath}`,
    origin,
    tokens: {
      admin: SEED_USERS.admin.token,
      alice: SEED_USERS.alice.token,
      bob: SEED_USERS.bob.token,
    },
    requests: stub.requests,
    keycloak: {
      url: origin,
      realm: KEYCLOAK_SEED.realm,
      clientId: KEYCLOAK_SEED.clientId,
      clientSecret: KEYCLOAK_SEED.clientSecret,
      requests: keycloak.requests,
      issuer: keycloak.issuer(),
      jwksFetches: keycloak.jwksFetches,
      mint: (username, options) => keycloak.mint(username, options),
      rotateKeys: (options) => keycloak.rotateKeys(undefined, options?.retire),
      setDown: (down) => keycloak.down = down,
      revokeAll: () => keycloak.revokeAll(),
      clients: oauth.clients,
      signInAs: (username) => oauth.user = username,
    },
    state: stub.state,
    events: stub.events,
    inject(name, fault) {
      const row = OPERATIONS.find((r) => r.name === name);
      if (!row) throw new Error(`Unknown operation "${name}"`);
      if (isAlwaysAlias(row)) {
        const other = row.sameRequestAs!.operation;
        throw new Error(`"${name}" sends the same request as "${other}": inject on "${other}"`);
      }
      faults.set(name, { ...fault });
    },
    clearFaults: () => faults.clear(),
    async shutdown() {
      stub.events.closeAll();
      stub.stopping.abort();
      await server.finished;
    },
  };
}

/** Starts a stub Account Server with the seed data. */
export async function startStub(options: StubOptions = {}): Promise<StubServer> {
  const stub = makeStub(options);
  const tls = options.cert && options.key ? { cert: options.cert, key: options.key } : {};
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    ...tls,
    signal: stub.stopping.signal,
    onListen: () => {},
    onError: (error) => json(500, { error: `Stub failure: ${String(error)}` }),
  }, (request) => handle(stub, request));
  const scheme = options.cert ? "https" : "http";
  const origin = `${scheme}://${hostForUrl(server.addr.hostname)}:${server.addr.port}`;
  stub.state.setStreamOrigin(origin.replace(/^http/, "ws"));
  stub.keycloak.origin = origin;
  await stub.keycloak.ready();
  if (options.demoData) publishDemoEvents(stub.state, stub.events);
  return serverOf(stub, origin, server);
}

/** As strict as the real server: a multipart operation takes only a form, a JSON one JSON. */
function checkEncoding(row: Operation, contentType: string | null, body: unknown): void {
  if (!row.body) return;
  const type = contentType ?? "";
  if (row.encoding === "multipart") {
    if (/^multipart\/form-data\s*;/i.test(type)) return;
    throw new HttpError(
      415,
      `The request body must be multipart/form-data, not ${JSON.stringify(contentType ?? "none")}`,
    );
  }
  if (type && !/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, `The request body must be JSON, not ${JSON.stringify(type)}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "The request body must be a JSON object");
  }
  if ("invalidJson" in body) throw new HttpError(400, "The request body is not valid JSON");
}

function bearer(header: string | null): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  return match?.[1];
}

function hostForUrl(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** A 200 whose body breaks off: the connection drops in the middle of the answer. */
function droppedResponse(): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"partial": '));
      setTimeout(() => controller.error(new Error("stub dropped the connection")), 20);
    },
  });
  return new Response(stream, { status: 200, headers: { "content-type": "application/json" } });
}

async function applyFault(fault: Fault, stopping: AbortSignal): Promise<Response | undefined> {
  if (fault.delayMs) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, fault.delayMs);
      stopping.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
  if (fault.drop) return droppedResponse();
  if (fault.status !== undefined) {
    return new Response(fault.body ?? null, {
      status: fault.status,
      headers: {
        ...(fault.contentType ? { "content-type": fault.contentType } : {}),
        ...fault.headers,
      },
    });
  }
  return undefined;
}
