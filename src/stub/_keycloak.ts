/**
 * A Keycloak-compatible token endpoint for the stub: the password, client-credentials and
 * refresh-token grants, issuing short-lived HS256 JWTs that the stub Account Server accepts.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** A token request as the stub received it (never the password or secret). */
export interface TokenRequest {
  grant_type: string;
  client_id: string;
  username?: string;
  /** The status the stub answered. */
  status: number;
}

/** The stub's users' passwords and its one confidential client. */
export const KEYCLOAK_SEED = {
  realm: "squonk2",
  clientId: "account-server-api",
  clientSecret: "stub-client-secret-7d41",
  /** The user the client-credentials grant acts as. */
  serviceAccount: "svc-account-server",
  passwords: {
    admin: "admin-password",
    alice: "alice-password",
    bob: "bob-password",
  } as Record<string, string>,
} as const;

function base64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

function fromBase64url(text: string): string {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return new TextDecoder().decode(
    Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)),
  );
}

/** The token endpoint and the verifier of the tokens it issues. */
export class StubKeycloak {
  /** Every token request, oldest first. */
  readonly requests: TokenRequest[] = [];
  /** While true, the endpoint answers 503 (a Keycloak outage). */
  down = false;
  #key = randomBytes(32);
  #lifetimeS: number;
  #now: () => number;

  /** Issues access tokens that live `lifetimeS` seconds. */
  constructor(lifetimeS: number, now: () => number = Date.now) {
    this.#lifetimeS = lifetimeS;
    this.#now = now;
  }

  /** The path of the token endpoint for the stub's realm. */
  get path(): string {
    return `/realms/${KEYCLOAK_SEED.realm}/protocol/openid-connect/token`;
  }

  /** Answers a token request. */
  async handle(request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const grant = form.get("grant_type") ?? "";
    const clientId = form.get("client_id") ?? "";
    const record: TokenRequest = { grant_type: grant, client_id: clientId, status: 0 };
    this.requests.push(record);
    const fail = (status: number, error: string, description: string) => {
      record.status = status;
      return Response.json({ error, error_description: description }, { status });
    };
    if (this.down) return fail(503, "temporarily_unavailable", "Keycloak is down");
    if (clientId !== KEYCLOAK_SEED.clientId) {
      return fail(401, "invalid_client", "Invalid client credentials");
    }
    const secret = form.get("client_secret");
    if (secret !== null && secret !== KEYCLOAK_SEED.clientSecret) {
      return fail(401, "invalid_client", "Invalid client credentials");
    }
    let username: string;
    if (grant === "password") {
      username = form.get("username") ?? "";
      record.username = username;
      const password = KEYCLOAK_SEED.passwords[username];
      if (password === undefined || form.get("password") !== password) {
        return fail(401, "invalid_grant", "Invalid user credentials");
      }
    } else if (grant === "client_credentials") {
      if (secret === null) return fail(401, "unauthorized_client", "Client secret required");
      username = KEYCLOAK_SEED.serviceAccount;
    } else if (grant === "refresh_token") {
      const claims = this.#verify(form.get("refresh_token") ?? "", "Refresh");
      if (!claims) return fail(400, "invalid_grant", "Token is not active");
      username = claims.preferred_username;
      record.username = username;
    } else {
      return fail(400, "unsupported_grant_type", `Unsupported grant_type "${grant}"`);
    }
    record.status = 200;
    return Response.json({
      access_token: this.#sign(username, "Bearer", this.#lifetimeS),
      expires_in: this.#lifetimeS,
      refresh_token: this.#sign(username, "Refresh", this.#lifetimeS * 10),
      refresh_expires_in: this.#lifetimeS * 10,
      token_type: "Bearer",
      scope: "openid profile",
    });
  }

  /** Invalidates every token issued so far (a new signing key). */
  revokeAll(): void {
    this.#key = randomBytes(32);
  }

  /** The username of a valid, unexpired access token this stub issued, or undefined. */
  userOf(token: string): string | undefined {
    return this.#verify(token, "Bearer")?.preferred_username;
  }

  #sign(username: string, typ: string, lifetimeS: number): string {
    const now = Math.floor(this.#now() / 1000);
    // Round expiry up, so a token lives at least its stated lifetime.
    const exp = Math.ceil(this.#now() / 1000 + lifetimeS);
    const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const payload = base64url(JSON.stringify({
      iss: `stub/realms/${KEYCLOAK_SEED.realm}`,
      sub: username,
      preferred_username: username,
      azp: KEYCLOAK_SEED.clientId,
      typ,
      iat: now,
      exp,
      jti: crypto.randomUUID(),
    }));
    const signature = createHmac("sha256", this.#key).update(`${header}.${payload}`).digest();
    return `${header}.${payload}.${base64url(new Uint8Array(signature))}`;
  }

  #verify(token: string, typ: string): { preferred_username: string } | undefined {
    const [header, payload, signature] = token.split(".");
    if (!header || !payload || !signature) return undefined;
    const expected = base64url(
      new Uint8Array(createHmac("sha256", this.#key).update(`${header}.${payload}`).digest()),
    );
    const a = new TextEncoder().encode(expected);
    const b = new TextEncoder().encode(signature);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    try {
      const claims = JSON.parse(fromBase64url(payload));
      if (claims.typ !== typ || !(claims.exp * 1000 > this.#now())) return undefined;
      return typeof claims.preferred_username === "string" ? claims : undefined;
    } catch {
      return undefined;
    }
  }
}
