/**
 * A Keycloak-compatible realm server for the stub: per realm, the JWKS and a token endpoint (password, client-credentials and refresh-token grants) issuing
 * short-lived RS256 JWTs shaped like Keycloak's, which the stub Account Server accepts. The
 * discovery documents and sign-in are in _oauth.ts.
 *
 * @module
 */
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

/** A token request as the stub received it (never the password or secret). */
export interface TokenRequest {
  grant_type: string;
  client_id: string;
  username?: string;
  /** The realm asked. */
  realm?: string;
  /** The status the stub answered. */
  status: number;
}

/** The stub's users' passwords and its one confidential client. */
export const KEYCLOAK_SEED = {
  realm: "squonk2",
  /** A second realm with the same users and client: its tokens are foreign to `realm`. */
  foreignRealm: "elsewhere",
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

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

interface Realm {
  keys: SigningKey[];
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = crypto.randomUUID();
  return {
    kid,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" },
  };
}

/** Each realm's first key, made once per process: RSA key generation is slow. */
const FIRST_KEYS = new Map<string, Promise<SigningKey>>();

function firstKey(realm: string): Promise<SigningKey> {
  let key = FIRST_KEYS.get(realm);
  if (!key) {
    key = newKey();
    FIRST_KEYS.set(realm, key);
  }
  return key;
}

/** What a test may change in a token it has the stub mint. */
export interface MintOptions {
  realm?: string;
  /** Seconds from now; negative for an already expired token. */
  lifetimeS?: number;
  /** Claims that replace the usual ones (e.g. `azp`, `iss`, `typ`). */
  claims?: JWTPayload;
}

// The discovery documents are the sign-in side's (_oauth.ts), which also names these endpoints.
const ROUTE = /^\/realms\/([^/]+)\/(protocol\/openid-connect\/(token|certs))$/;

/** The realms' endpoints and the verifier of the tokens they issue. */
export class StubKeycloak {
  /** Every token request, oldest first. */
  readonly requests: TokenRequest[] = [];
  /** How many times each realm's JWKS was fetched. */
  readonly jwksFetches = new Map<string, number>();
  /** While true, every endpoint answers 503 (a Keycloak outage). */
  down = false;
  /** The base URL the realms' issuers are under; set once the server listens. */
  origin = "";
  #realms = new Map<string, Promise<Realm>>();
  #issued = new Map<
    string,
    { username: string; typ: string; exp: number; kid: string; azp: string }
  >();
  #lifetimeS: number;
  #now: () => number;

  /** Issues access tokens that live `lifetimeS` seconds. */
  constructor(lifetimeS: number, now: () => number = Date.now) {
    this.#lifetimeS = lifetimeS;
    this.#now = now;
  }

  /** Whether `pathname` is one of the realms' endpoints. */
  serves(pathname: string): boolean {
    return ROUTE.test(pathname);
  }

  /** The issuer of `realm`'s tokens, as its OpenID configuration says. */
  issuer(realm: string = KEYCLOAK_SEED.realm): string {
    return `${this.origin}/realms/${realm}`;
  }

  /** Answers a request for one of the realms' endpoints. */
  async handle(request: Request): Promise<Response> {
    const [, realm = "", what] = ROUTE.exec(new URL(request.url).pathname) ?? [];
    if (this.down) {
      const body = { error: "temporarily_unavailable", error_description: "Keycloak is down" };
      if (what?.endsWith("token")) {
        this.requests.push({ ...this.#record(new URLSearchParams(), realm), status: 503 });
      }
      return Response.json(body, { status: 503 });
    }
    if (!this.#isRealm(realm)) {
      return Response.json({ error: "Realm does not exist" }, { status: 404 });
    }
    if (what === "protocol/openid-connect/certs" && request.method === "GET") {
      this.jwksFetches.set(realm, (this.jwksFetches.get(realm) ?? 0) + 1);
      return Response.json({ keys: (await this.#realm(realm)).keys.map((k) => k.jwk) });
    }
    if (what === "protocol/openid-connect/token" && request.method === "POST") {
      return await this.#token(realm, new URLSearchParams(await request.text()));
    }
    return Response.json({ error: "Method not allowed" }, { status: 405 });
  }

  /**
   * A new signing key for `realm`: tokens signed by it carry an unknown `kid`. Older keys stay
   * published, unless `retire`: then only the new key is (as when a key is removed in Keycloak).
   */
  async rotateKeys(realm: string = KEYCLOAK_SEED.realm, retire = false): Promise<void> {
    const keys = (await this.#realm(realm)).keys;
    keys.unshift(await newKey());
    if (retire) keys.length = 1;
  }

  /** Makes the realms' keys ready, so the first token is issued without delay. */
  async ready(): Promise<void> {
    await this.#realm(KEYCLOAK_SEED.realm);
  }

  /** Invalidates every token issued so far, as if they had all expired. */
  revokeAll(): void {
    this.#issued.clear();
  }

  /** An access token for `username` signed by the realm's key, with claims a test chooses. */
  async mint(username: string, options: MintOptions = {}): Promise<string> {
    return await this.#sign(
      options.realm ?? KEYCLOAK_SEED.realm,
      username,
      "Bearer",
      options.lifetimeS ?? this.#lifetimeS,
      options.claims,
    );
  }

  /** The username of a valid, unexpired access token this stub issued, or undefined. */
  userOf(token: string): string | undefined {
    const issued = this.#issued.get(token);
    if (!issued || issued.typ !== "Bearer" || !(issued.exp * 1000 > this.#now())) return undefined;
    return issued.username;
  }

  #isRealm(realm: string): boolean {
    return realm === KEYCLOAK_SEED.realm || realm === KEYCLOAK_SEED.foreignRealm;
  }

  #realm(name: string): Promise<Realm> {
    let realm = this.#realms.get(name);
    if (!realm) {
      realm = firstKey(name).then((key) => ({ keys: [key] }));
      this.#realms.set(name, realm);
    }
    return realm;
  }

  #record(form: URLSearchParams, realm: string): TokenRequest {
    return {
      grant_type: form.get("grant_type") ?? "",
      client_id: form.get("client_id") ?? "",
      realm,
      status: 0,
    };
  }

  async #token(realm: string, form: URLSearchParams): Promise<Response> {
    const record = this.#record(form, realm);
    this.requests.push(record);
    const fail = (status: number, error: string, description: string) => {
      record.status = status;
      return Response.json({ error, error_description: description }, { status });
    };
    const grant = record.grant_type;
    if (record.client_id !== KEYCLOAK_SEED.clientId) {
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
      const issued = this.#issued.get(form.get("refresh_token") ?? "");
      if (!issued || issued.typ !== "Refresh" || !(issued.exp * 1000 > this.#now())) {
        return fail(400, "invalid_grant", "Token is not active");
      }
      // A refresh token belongs to the client it was issued to (a signed-in client's, too).
      if (issued.azp !== record.client_id) {
        return fail(400, "invalid_grant", "Token client and authorized client don't match");
      }
      username = issued.username;
      record.username = username;
    } else {
      return fail(400, "unsupported_grant_type", `Unsupported grant_type "${grant}"`);
    }
    record.status = 200;
    return Response.json({
      access_token: await this.#sign(realm, username, "Bearer", this.#lifetimeS),
      expires_in: this.#lifetimeS,
      refresh_token: await this.#sign(realm, username, "Refresh", this.#lifetimeS * 10),
      refresh_expires_in: this.#lifetimeS * 10,
      token_type: "Bearer",
      scope: "openid profile",
    });
  }

  async #sign(
    realm: string,
    username: string,
    typ: string,
    lifetimeS: number,
    claims: JWTPayload = {},
  ): Promise<string> {
    const key = (await this.#realm(realm)).keys[0]!;
    const now = Math.floor(this.#now() / 1000);
    // Round expiry up, so a token lives at least its stated lifetime.
    const exp = Math.ceil(this.#now() / 1000 + lifetimeS);
    const payload: JWTPayload = {
      iss: this.issuer(realm),
      sub: `f:${realm}:${username}`,
      aud: "account",
      preferred_username: username,
      azp: KEYCLOAK_SEED.clientId,
      typ,
      iat: now,
      exp,
      jti: crypto.randomUUID(),
      ...claims,
    };
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: key.kid })
      .sign(key.privateKey);
    this.#issued.set(token, {
      username,
      typ: String(payload.typ),
      exp: Number(payload.exp),
      kid: key.kid,
      azp: String(payload.azp),
    });
    return token;
  }
}
