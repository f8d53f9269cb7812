/**
 * Verifies callers' bearer tokens against a Keycloak realm: the signature against the realm's
 * JWKS (found through its OpenID configuration, cached for at most 10 minutes, fetched again
 * sooner when a token names a key it does not hold), then issuer, expiry, token type, and
 * audience or `azp`. The cryptography is `jose`'s; nothing here decodes a claim before the
 * signature holds. Keycloak's documents are always fetched with TLS verified, whatever the
 * Account Server's `SQUONK2_ASAPI_VERIFY_SSL_CERT` says: whoever serves the key set decides who
 * is let in (a private CA goes in through Deno's `DENO_CERT`).
 *
 * @module
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, jwtVerify } from "jose";
import { exchange } from "../api/exchange.ts";

/** Where the tokens come from and who they must be for. */
export interface VerifierOptions {
  /** Keycloak's base URL, e.g. `https://example.com/auth`. */
  url: string;
  realm: string;
  /** The Account Server's client id: a token must name it in `aud` or `azp`. */
  clientId: string;
  /** Seconds to wait for Keycloak's documents (default 10). */
  timeoutS?: number;
  /** Least seconds between two JWKS fetches caused by unknown key ids (default 10). */
  refetchAfterS?: number;
  /**
   * Most seconds a fetched key set is trusted (default 600, as `jose`'s `createRemoteJWKSet`):
   * past it the set is fetched again before the next token is checked, so a key removed from the
   * realm stops verifying. If that fetch fails, callers get VerifierUnavailable, not the old set.
   */
  maxAgeS?: number;
  /** The clock, in milliseconds (for tests). */
  now?: () => number;
}

/** A verified caller. */
export interface Caller {
  /** `issuer|subject`: who the token speaks for, stable across renewed tokens. */
  id: string;
  /** When the token expires, in milliseconds. */
  expiresAt: number;
}

/** A token that is not acceptable; the message is safe to show to its sender. */
export class InvalidToken extends Error {}

/** Keycloak could not be asked; the message is safe to show. */
export class VerifierUnavailable extends Error {}

const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"];
const MAX_DOCUMENT_BYTES = 512 * 1024;
const DEFAULT_MAX_AGE_S = 600;

interface Keys {
  issuer: string;
  jwksUri: string;
  keySet: ReturnType<typeof createLocalJWKSet>;
  fetchedAt: number;
}

/** Verifies Keycloak access tokens for one realm and client. */
export class TokenVerifier {
  #options: VerifierOptions;
  #keys: Keys | undefined;
  #pending: Promise<Keys> | undefined;
  #now: () => number;

  /** A verifier for the realm and client of `options`; nothing is fetched until the first token. */
  constructor(options: VerifierOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The URL of the realm's OpenID configuration. */
  get discoveryUrl(): string {
    const base = this.#options.url.replace(/\/+$/, "");
    return `${base}/realms/${
      encodeURIComponent(this.#options.realm)
    }/.well-known/openid-configuration`;
  }

  /** The caller a token speaks for; InvalidToken or VerifierUnavailable otherwise. */
  async verify(token: string): Promise<Caller> {
    let keys = await this.#current();
    try {
      return await this.#check(token, keys);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw invalid(error);
      const coolDownMs = (this.#options.refetchAfterS ?? 10) * 1000;
      if (this.#now() - keys.fetchedAt < coolDownMs) throw invalid(error);
      keys = await this.#refresh(keys);
      try {
        return await this.#check(token, keys);
      } catch (again) {
        throw invalid(again);
      }
    }
  }

  async #check(token: string, keys: Keys): Promise<Caller> {
    const { payload } = await jwtVerify(token, keys.keySet, {
      issuer: keys.issuer,
      algorithms: ALGORITHMS,
      currentDate: new Date(this.#now()),
      requiredClaims: ["exp", "sub"],
    });
    // Keycloak marks access tokens "Bearer"; ID and refresh tokens are not for calling APIs.
    if (payload.typ !== undefined && payload.typ !== "Bearer") {
      throw new InvalidToken(`the token is a "${String(payload.typ)}" token, not an access token`);
    }
    const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!audience.includes(this.#options.clientId) && payload.azp !== this.#options.clientId) {
      throw new InvalidToken(`the token was not issued for "${this.#options.clientId}"`);
    }
    return { id: `${keys.issuer}|${payload.sub}`, expiresAt: payload.exp! * 1000 };
  }

  /** The key set, fetched again first when it is older than the maximum age. */
  #current(): Promise<Keys> {
    const keys = this.#keys;
    if (!keys) return this.#refresh(undefined);
    const maxAgeMs = (this.#options.maxAgeS ?? DEFAULT_MAX_AGE_S) * 1000;
    if (this.#now() - keys.fetchedAt >= maxAgeMs) return this.#refresh(keys);
    return Promise.resolve(keys);
  }

  /** Fetches the keys again, once for all callers waiting on it. */
  #refresh(stale: Keys | undefined): Promise<Keys> {
    if (this.#keys !== stale) return Promise.resolve(this.#keys!);
    this.#pending ??= this.#fetchKeys(stale).then((keys) => this.#keys = keys).finally(() =>
      this.#pending = undefined
    );
    return this.#pending;
  }

  async #fetchKeys(stale: Keys | undefined): Promise<Keys> {
    const issuer = stale?.issuer ?? "";
    let jwksUri = stale?.jwksUri ?? "";
    let discovered = issuer;
    if (!stale) {
      const config = await this.#document(this.discoveryUrl);
      if (typeof config.issuer !== "string" || typeof config.jwks_uri !== "string") {
        throw new VerifierUnavailable("Keycloak's OpenID configuration has no issuer or jwks_uri");
      }
      discovered = config.issuer;
      jwksUri = config.jwks_uri;
    }
    const jwks = await this.#document(jwksUri);
    if (!Array.isArray(jwks.keys)) throw new VerifierUnavailable("Keycloak's JWKS has no keys");
    return {
      issuer: discovered,
      jwksUri,
      keySet: createLocalJWKSet(jwks as unknown as JSONWebKeySet),
      fetchedAt: this.#now(),
    };
  }

  async #document(url: string): Promise<Record<string, unknown>> {
    const timeoutS = this.#options.timeoutS ?? 10;
    const answer = await exchange({ url, method: "GET", headers: { accept: "application/json" } }, {
      // Never the Account Server's setting: a forged key set would let anyone in.
      verifyTls: true,
      signal: AbortSignal.timeout(timeoutS * 1000),
      timeoutS,
      maxBytes: MAX_DOCUMENT_BYTES,
    });
    const what = new URL(url).pathname;
    if (!answer.ok && answer.reason === "tls") {
      // Not the Account Server's advice (VERIFY_SSL_CERT=no): that setting does not apply here.
      throw new VerifierUnavailable(
        `the TLS certificate of Keycloak ("${new URL(url).host}") is not trusted, and callers' ` +
          "tokens are verified only against a trusted Keycloak: give its CA to Deno with DENO_CERT",
      );
    }
    if (!answer.ok) {
      throw new VerifierUnavailable(`cannot reach Keycloak to verify tokens: ${answer.error}`);
    }
    if (answer.status !== 200) {
      throw new VerifierUnavailable(`Keycloak answered ${answer.statusLine} for ${what}`);
    }
    try {
      const parsed: unknown = JSON.parse(answer.body);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
        return parsed as Record<string, unknown>;
      }
    } catch {
      // Reported below.
    }
    throw new VerifierUnavailable(`Keycloak's ${what} is not a JSON object`);
  }
}

/** Why jose refused a token, in words safe to send back (no claim values). */
function invalid(error: unknown): Error {
  if (error instanceof InvalidToken || error instanceof VerifierUnavailable) return error;
  if (error instanceof errors.JWTExpired) return new InvalidToken("the token has expired");
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new InvalidToken(`the token's "${error.claim}" claim is not acceptable`);
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return new InvalidToken("the token is not signed by a key of this realm");
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new InvalidToken("the token's signature does not verify");
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new InvalidToken("the token's signing algorithm is not accepted");
  }
  return new InvalidToken("the token is not a valid signed JWT");
}
