/**
 * The stub Keycloak's OAuth side, what an MCP client needs to sign a user in: the realm's
 * authorization server metadata (RFC 8414 and OpenID discovery, at Keycloak's paths), dynamic
 * client registration (RFC 7591) at `/realms/{realm}/clients-registrations/openid-connect`, an
 * authorization endpoint (authorization code with PKCE S256 only) that signs in a configured demo
 * user without a form, and the token endpoint's `authorization_code` grant and `refresh_token`
 * grant for the clients registered here. Tokens are signed by the realm's own signer (`mint`), so
 * the stub Account Server and a verifying MCP server accept them like any other.
 *
 * @module
 */
import type { TokenRequest } from "./_keycloak.ts";

/** What the stub Keycloak lends its OAuth side. */
export interface OAuthOptions {
  /** The realms that exist. */
  realms: readonly string[];
  /** The issuer of a realm's tokens, e.g. `http://127.0.0.1:8090/realms/squonk2`. */
  issuer(realm: string): string;
  /** Signs a token as the realm does (see `StubKeycloak.mint`). */
  mint(
    username: string,
    options: { realm?: string; lifetimeS?: number; claims?: Record<string, unknown> },
  ): Promise<string>;
  /** Access token lifetime, in seconds. */
  lifetimeS: number;
  /** The audience every access token carries (Keycloak's audience mapper): the API's client id. */
  audience: string;
  /** Token requests are recorded here beside the realm's own. */
  requests: TokenRequest[];
  /** The user the authorization endpoint signs in. */
  user: string;
  now?: () => number;
}

/** A client registered through dynamic client registration. */
export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  client_name?: string;
  redirect_uris: string[];
  token_endpoint_auth_method: "none" | "client_secret_basic" | "client_secret_post";
  grant_types: string[];
  realm: string;
}

interface Grant {
  clientId: string;
  redirectUri: string;
  challenge: string;
  username: string;
  realm: string;
  scope: string;
  expiresAt: number;
}

interface Refresh {
  clientId: string;
  username: string;
  realm: string;
  scope: string;
  expiresAt: number;
}

const ROUTE =
  /^\/realms\/([^/]+)\/(\.well-known\/(?:openid-configuration|oauth-authorization-server)|protocol\/openid-connect\/(?:auth|token)|clients-registrations\/openid-connect)$/;
const CODE_LIFETIME_MS = 60_000;

/** The realm's discovery document, as Keycloak publishes it (the parts a client reads). */
export function discoveryDocument(issuer: string): Record<string, unknown> {
  const oidc = `${issuer}/protocol/openid-connect`;
  return {
    issuer,
    authorization_endpoint: `${oidc}/auth`,
    token_endpoint: `${oidc}/token`,
    jwks_uri: `${oidc}/certs`,
    registration_endpoint: `${issuer}/clients-registrations/openid-connect`,
    grant_types_supported: [
      "authorization_code",
      "refresh_token",
      "password",
      "client_credentials",
    ],
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["RS256"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
  };
}

/** The realms' authorization endpoint, client registration and code and refresh grants. */
export class StubOAuth {
  /** Clients registered so far, by id. */
  readonly clients = new Map<string, RegisteredClient>();
  #options: OAuthOptions;
  #codes = new Map<string, Grant>();
  #refreshes = new Map<string, Refresh>();
  #now: () => number;

  /** The OAuth side of a stub Keycloak. */
  constructor(options: OAuthOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The user the authorization endpoint signs in from now on. */
  set user(username: string) {
    this.#options.user = username;
  }

  /** Whether `pathname` is one of this side's endpoints. */
  serves(pathname: string): boolean {
    return ROUTE.test(pathname);
  }

  /**
   * Answers `request` if it is this side's: the discovery documents, registration, the
   * authorization endpoint, and token requests with a code or from a client registered here.
   * Anything else (the password and client-credentials grants) is left to the realm.
   */
  async handle(request: Request): Promise<Response | undefined> {
    const url = new URL(request.url);
    const [, realm = "", what = ""] = ROUTE.exec(url.pathname) ?? [];
    if (!what) return undefined;
    if (!this.#options.realms.includes(realm)) {
      return Response.json({ error: "Realm does not exist" }, { status: 404 });
    }
    const issuer = this.#options.issuer(realm);
    if (what.startsWith(".well-known") && request.method === "GET") {
      return Response.json(discoveryDocument(issuer));
    }
    if (what.startsWith("clients-registrations") && request.method === "POST") {
      return await this.#register(realm, issuer, request);
    }
    if (what.endsWith("/auth") && request.method === "GET") {
      return this.#authorize(realm, issuer, url.searchParams);
    }
    if (what.endsWith("/token") && request.method === "POST") {
      const form = new URLSearchParams(await request.clone().text());
      const clientId = clientCredentials(request, form).id;
      const ours = form.get("grant_type") === "authorization_code" || this.clients.has(clientId);
      return ours ? await this.#token(realm, request, form) : undefined;
    }
    return Response.json({ error: "Method not allowed" }, { status: 405 });
  }

  async #register(realm: string, issuer: string, request: Request): Promise<Response> {
    let metadata: Record<string, unknown>;
    try {
      const parsed: unknown = await request.json();
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw 0;
      metadata = parsed as Record<string, unknown>;
    } catch {
      return oauthError(400, "invalid_client_metadata", "The body must be a JSON object");
    }
    const redirects = metadata.redirect_uris;
    if (!Array.isArray(redirects) || redirects.length === 0) {
      return oauthError(400, "invalid_redirect_uri", "redirect_uris must list at least one URI");
    }
    for (const uri of redirects) {
      const why = redirectProblem(uri);
      if (why) return oauthError(400, "invalid_redirect_uri", why);
    }
    const method = metadata.token_endpoint_auth_method ?? "client_secret_basic";
    if (method !== "none" && method !== "client_secret_basic" && method !== "client_secret_post") {
      return oauthError(
        400,
        "invalid_client_metadata",
        `Unsupported token_endpoint_auth_method ${JSON.stringify(method)}`,
      );
    }
    const client: RegisteredClient = {
      client_id: crypto.randomUUID(),
      ...(method === "none" ? {} : { client_secret: crypto.randomUUID() }),
      ...(typeof metadata.client_name === "string" ? { client_name: metadata.client_name } : {}),
      redirect_uris: redirects as string[],
      token_endpoint_auth_method: method,
      grant_types: ["authorization_code", "refresh_token"],
      realm,
    };
    this.clients.set(client.client_id, client);
    const { realm: _, ...published } = client;
    return Response.json({
      ...published,
      response_types: ["code"],
      client_id_issued_at: Math.floor(this.#now() / 1000),
      client_secret_expires_at: 0,
      registration_client_uri: `${issuer}/clients-registrations/openid-connect/${client.client_id}`,
    }, { status: 201 });
  }

  #authorize(realm: string, issuer: string, query: URLSearchParams): Response {
    const client = this.clients.get(query.get("client_id") ?? "");
    if (!client || client.realm !== realm) {
      return errorPage(400, "Client not found");
    }
    const redirectUri = query.get("redirect_uri") ?? "";
    // An unregistered redirect URI gets a page, never a redirect: codes go only where registered.
    if (!client.redirect_uris.includes(redirectUri)) {
      return errorPage(400, "Invalid parameter: redirect_uri");
    }
    const back = (params: Record<string, string>) => {
      const target = new URL(redirectUri);
      for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value);
      const state = query.get("state");
      if (state !== null) target.searchParams.set("state", state);
      target.searchParams.set("iss", issuer);
      return new Response(null, { status: 302, headers: { location: target.href } });
    };
    if (query.get("response_type") !== "code") {
      return back({
        error: "unsupported_response_type",
        error_description: "Use response_type=code",
      });
    }
    const challenge = query.get("code_challenge") ?? "";
    if (query.get("code_challenge_method") !== "S256" || !/^[\w-]{43,128}$/.test(challenge)) {
      return back({
        error: "invalid_request",
        error_description: "PKCE with code_challenge_method S256 is required",
      });
    }
    const code = crypto.randomUUID();
    this.#codes.set(code, {
      clientId: client.client_id,
      redirectUri,
      challenge,
      username: this.#options.user,
      realm,
      scope: query.get("scope") ?? "openid profile",
      expiresAt: this.#now() + CODE_LIFETIME_MS,
    });
    return back({ code, session_state: crypto.randomUUID() });
  }

  async #token(realm: string, request: Request, form: URLSearchParams): Promise<Response> {
    const credentials = clientCredentials(request, form);
    const grant = form.get("grant_type") ?? "";
    const record: TokenRequest = { grant_type: grant, client_id: credentials.id, status: 0 };
    this.#options.requests.push(record);
    const fail = (status: number, error: string, description: string) => {
      record.status = status;
      return oauthError(status, error, description);
    };
    const client = this.clients.get(credentials.id);
    if (!client || client.realm !== realm || !secretMatches(client, credentials.secret)) {
      return fail(401, "invalid_client", "Invalid client or Invalid client credentials");
    }
    const granted = grant === "authorization_code"
      ? await this.#redeemCode(client, form)
      : grant === "refresh_token"
      ? this.#redeemRefresh(client, form)
      : `Unsupported grant_type "${grant}"`;
    if (typeof granted === "string") {
      const error = grant === "authorization_code" || grant === "refresh_token"
        ? "invalid_grant"
        : "unsupported_grant_type";
      return fail(400, error, granted);
    }
    record.username = granted.username;
    record.status = 200;
    return Response.json(await this.#issue(client, granted));
  }

  async #redeemCode(client: RegisteredClient, form: URLSearchParams): Promise<Refresh | string> {
    const code = form.get("code") ?? "";
    const grant = this.#codes.get(code);
    // A code is good for one exchange, whatever its outcome.
    this.#codes.delete(code);
    if (!grant || grant.clientId !== client.client_id || grant.expiresAt <= this.#now()) {
      return "Code not valid";
    }
    if (form.get("redirect_uri") !== grant.redirectUri) return "Incorrect redirect_uri";
    // RFC 7636: a verifier of 43 to 128 unreserved characters; none (or "") is no verifier.
    const verifier = form.get("code_verifier") ?? "";
    if (!/^[\w.~-]{43,128}$/.test(verifier) || await s256(verifier) !== grant.challenge) {
      return "PKCE verification failed: Code mismatch";
    }
    return { ...grant, expiresAt: 0 };
  }

  #redeemRefresh(client: RegisteredClient, form: URLSearchParams): Refresh | string {
    const refresh = this.#refreshes.get(form.get("refresh_token") ?? "");
    if (!refresh || refresh.expiresAt <= this.#now()) return "Token is not active";
    if (refresh.clientId !== client.client_id) {
      return "Token client and authorized client don't match";
    }
    return refresh;
  }

  async #issue(client: RegisteredClient, granted: Refresh): Promise<Record<string, unknown>> {
    const { lifetimeS, audience } = this.#options;
    const claims = { azp: client.client_id, aud: [audience, "account"], scope: granted.scope };
    const access = await this.#options.mint(granted.username, {
      realm: granted.realm,
      lifetimeS,
      claims,
    });
    const refreshLifetimeS = lifetimeS * 10;
    const refresh = await this.#options.mint(granted.username, {
      realm: granted.realm,
      lifetimeS: refreshLifetimeS,
      claims: { ...claims, typ: "Refresh" },
    });
    this.#refreshes.set(refresh, {
      ...granted,
      clientId: client.client_id,
      expiresAt: this.#now() + refreshLifetimeS * 1000,
    });
    return {
      access_token: access,
      expires_in: lifetimeS,
      refresh_token: refresh,
      refresh_expires_in: refreshLifetimeS,
      token_type: "Bearer",
      scope: granted.scope,
    };
  }
}

/** The client id and secret of a token request, from Basic authentication or the form. */
function clientCredentials(
  request: Request,
  form: URLSearchParams,
): { id: string; secret: string | undefined } {
  const basic = /^Basic\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
  if (basic) {
    try {
      const [id = "", secret] = atob(basic[1]!).split(":").map(decodeURIComponent);
      return { id, secret };
    } catch {
      return { id: "", secret: undefined };
    }
  }
  return { id: form.get("client_id") ?? "", secret: form.get("client_secret") ?? undefined };
}

function secretMatches(client: RegisteredClient, secret: string | undefined): boolean {
  return client.client_secret === undefined || client.client_secret === secret;
}

/** Why `uri` cannot be a redirect URI (absolute, no fragment, https unless loopback). */
function redirectProblem(uri: unknown): string | undefined {
  let url: URL;
  try {
    url = new URL(String(uri));
  } catch {
    return `Invalid redirect_uri ${JSON.stringify(uri)}`;
  }
  if (typeof uri !== "string" || url.hash) return `Invalid redirect_uri ${JSON.stringify(uri)}`;
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol === "https:" || (url.protocol === "http:" && loopback)) return undefined;
  return `Redirect URI ${JSON.stringify(uri)} must use https or a loopback address`;
}

async function s256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function oauthError(status: number, error: string, description: string): Response {
  return Response.json({ error, error_description: description }, { status });
}

function errorPage(status: number, message: string): Response {
  return new Response(`<!doctype html><title>Error</title><p>${message}</p>`, {
    status,
    headers: { "content-type": "text/html; charset=utf-8" },
  });
}
