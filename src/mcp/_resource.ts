/**
 * The HTTP endpoint as an OAuth 2.1 resource server (the MCP specification's authorization
 * section): its Protected Resource Metadata (RFC 9728), naming the Keycloak realm callers sign in
 * with, the `WWW-Authenticate` challenge that points to it, and the `/healthz` and `/readyz`
 * probes for load balancers. None of these needs a token, and none shows configuration beyond
 * what a client needs to sign in.
 *
 * @module
 */

/** Where callers sign in, and where clients reach the endpoint. */
export interface ResourceOptions {
  /** The authorization server callers get tokens from: the Keycloak realm's URL. */
  authorizationServer?: string;
  /** The URL clients use for `/mcp` (behind a proxy); default: the request's own. */
  publicUrl?: string;
  /**
   * Scopes clients ask for when they sign in, published as `scopes_supported` (the MCP SDK's
   * client requests exactly these): e.g. an optional Keycloak client scope that adds the
   * Account Server's audience to the tokens of MCP clients only.
   */
  scopes?: readonly string[];
}

/** The well-known path of the Protected Resource Metadata. */
export const METADATA_PATH = "/.well-known/oauth-protected-resource";

/**
 * The URL of the MCP endpoint as clients see it, the `resource` of the metadata: the public URL,
 * else the request's `Host` (which the caller has checked against the allowed hosts). Never the
 * request target: a request may name any URL there (`POST http://evil.example/mcp`).
 */
export function resourceUrl(request: Request, options: ResourceOptions): string {
  if (options.publicUrl) return options.publicUrl;
  return `http://${(request.headers.get("host") ?? "").toLowerCase()}/mcp`;
}

/** The URL of the metadata for the endpoint (RFC 9728's path-suffixed form), if it is served. */
export function metadataUrl(request: Request, options: ResourceOptions): string | undefined {
  if (!options.authorizationServer) return undefined;
  const resource = new URL(resourceUrl(request, options));
  return `${resource.origin}${METADATA_PATH}${resource.pathname}`;
}

/**
 * A `WWW-Authenticate` value: Bearer with these parameters, each value a quoted string (a quote
 * or backslash in a value becomes `'`, so no value can end early and add parameters).
 */
export function bearerChallenge(params: Record<string, string>): string {
  const quoted = Object.entries(params).map(([name, value]) =>
    `${name}="${value.replace(/["\\\r\n]/g, "'")}"`
  );
  return `Bearer ${quoted.join(", ")}`;
}

/**
 * Answers a request for the Protected Resource Metadata: at the well-known path itself and with
 * the endpoint's path appended (`/.well-known/oauth-protected-resource/mcp`). Undefined for
 * any other path, or where no authorization server is configured (there is nowhere to sign in).
 */
export function serveMetadata(request: Request, options: ResourceOptions): Response | undefined {
  const { pathname } = new URL(request.url);
  if (!options.authorizationServer || !pathname.startsWith(METADATA_PATH)) return undefined;
  const resource = resourceUrl(request, options);
  const suffix = pathname.slice(METADATA_PATH.length);
  if (suffix !== "" && suffix !== new URL(resource).pathname) return undefined;
  const cors = { "access-control-allow-origin": "*" };
  if (request.method === "OPTIONS") {
    return new Response(null, {
      status: 204,
      headers: { ...cors, "access-control-allow-headers": "*" },
    });
  }
  if (request.method !== "GET") {
    return Response.json({ error: "Method not allowed" }, {
      status: 405,
      headers: { allow: "GET" },
    });
  }
  return Response.json({
    resource,
    authorization_servers: [options.authorizationServer],
    ...(options.scopes?.length ? { scopes_supported: options.scopes } : {}),
    bearer_methods_supported: ["header"],
    resource_name: "Squonk2 Account Server",
  }, { headers: { ...cors, "cache-control": "max-age=300" } });
}

/** Whether the Account Server answers `get_version` within 5 s: what `/readyz` reports. */
export function accountServerAnswers(
  api: {
    callByName(
      name: string,
      params: unknown,
      options: { timeoutS: number },
    ): Promise<{ success: boolean }>;
  },
): () => Promise<boolean> {
  return async () => (await api.callByName("get_version", {}, { timeoutS: 5 })).success;
}

/** How long a `/readyz` answer is reused, so probes cannot flood the Account Server. */
const READY_CACHE_MS = 1000;

/**
 * `/healthz` (the process answers) and `/readyz` (`ready()` holds: the Account Server answers
 * `get_version`). Bodies say only "ok" or "not ready". Undefined for any other path.
 */
export function healthProbes(
  ready: () => Promise<boolean>,
): (request: Request) => Promise<Response | undefined> {
  let last: { at: number; ok: Promise<boolean> } | undefined;
  const check = (): Promise<boolean> => {
    if (!last || performance.now() - last.at > READY_CACHE_MS) {
      last = { at: performance.now(), ok: ready().catch(() => false) };
    }
    return last.ok;
  };
  return async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz") return Response.json({ status: "ok" });
    if (pathname !== "/readyz") return undefined;
    const ok = await check();
    return Response.json({ status: ok ? "ok" : "not ready" }, {
      status: ok ? 200 : 503,
      headers: { "cache-control": "no-store" },
    });
  };
}
