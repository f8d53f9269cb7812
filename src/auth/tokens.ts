/**
 * Where Account Server access tokens come from: a static token, or Keycloak
 * (OpenID Connect password or client-credentials grant), cached and renewed before it expires.
 * Concurrent calls share one renewal. Tokens and passwords are registered for redaction.
 *
 * @module
 */
import { addSecret } from "../log.ts";
import type { NoResponseReason } from "../api/mod.ts";
import { exchange, type Exchanged } from "../api/exchange.ts";

/** How long a caller waits for a token, and what cancels the wait. */
export interface TokenWait {
  /** Cancels the wait (the caller's call was cancelled). */
  signal?: AbortSignal;
  /** The longest wait, in seconds (the call's `timeout_s`). */
  timeoutS?: number;
}

/** A source of access tokens. */
export interface TokenSource {
  /** A valid token, or a CredentialsError saying why there is none (in time). */
  getToken(wait?: TokenWait): Promise<string>;
  /** Forgets a token the Account Server refused, so the next call gets a new one. */
  invalidate(token: string): void;
  /** How the tokens are obtained, for logs and `get_api_url` (never a secret). */
  readonly kind: string;
  /** Whether a refused token can be replaced by a new one. */
  readonly renewable: boolean;
}

/** Why no token could be had, as a cause a hint or a log line is chosen by. */
export type CredentialsFailure =
  /** No credentials are configured. */
  | "none"
  /** Keycloak refused the credentials: wrong user, password or client secret. */
  | "rejected"
  /** Keycloak's token URL does not exist: wrong URL or realm. */
  | "not_found"
  /** Keycloak's token URL answers a redirect, never followed: a wrong URL (http for https). */
  | "redirected"
  /** No answer from Keycloak; `network` says why. */
  | "unreachable"
  /** Keycloak answered, but with no usable token. */
  | "failed";

/** Why no token could be had; the message is safe to show. */
export class CredentialsError extends Error {
  /** The cause. */
  readonly kind: CredentialsFailure;
  /** Why no answer came, when `kind` is "unreachable". */
  readonly network?: NoResponseReason;
  /** A failure of `kind`; the message names no secret. */
  constructor(message: string, kind: CredentialsFailure, network?: NoResponseReason) {
    super(message);
    this.kind = kind;
    this.network = network;
  }
}

/** No credentials configured: every call that needs a token fails clearly. */
export class NoCredentials implements TokenSource {
  readonly kind = "none";
  readonly renewable = false;
  /** Always fails, saying how to configure credentials. */
  getToken(): Promise<string> {
    return Promise.reject(
      new CredentialsError(
        "no Account Server credentials are configured: the operator must set " +
          "SQUONK2_ASAPI_TOKEN or the SQUONK2_KEYCLOAK_* variables",
        "none",
      ),
    );
  }
  /** Nothing to forget. */
  invalidate(): void {}
}

/** One token given by the operator. */
export class StaticToken implements TokenSource {
  readonly kind = "static token";
  readonly renewable = false;
  #token: string;
  /** A source that always returns `token`. */
  constructor(token: string) {
    this.#token = token;
    addSecret(token);
  }
  /** The token. */
  getToken(): Promise<string> {
    return Promise.resolve(this.#token);
  }
  /** A static token cannot be renewed. */
  invalidate(): void {}
}

/** What Keycloak needs to issue a token. */
export interface KeycloakOptions {
  url: string;
  realm: string;
  clientId: string;
  clientSecret?: string;
  /** With a user and password: password grant; without: client-credentials grant. */
  username?: string;
  password?: string;
  verifyTls?: boolean;
  timeoutS?: number;
}

/** One renewal shared by the calls waiting for it; aborted when the last of them gives up. */
interface Renewal {
  token: Promise<string>;
  controller: AbortController;
  waiting: number;
}

interface Issued {
  accessToken: string;
  expiresAt: number;
  refreshToken?: string;
  refreshExpiresAt: number;
}

/** Tokens from Keycloak, cached and renewed before they expire. */
export class KeycloakTokens implements TokenSource {
  readonly kind: string;
  readonly renewable = true;
  #options: KeycloakOptions;
  #endpoint: string;
  #issued: Issued | undefined;
  #renewal: Renewal | undefined;
  #now: () => number;

  /** A source for `options`; `now` (milliseconds) is for tests. */
  constructor(options: KeycloakOptions, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
    const base = options.url.replace(/\/+$/, "");
    this.#endpoint = `${base}/realms/${encodeURIComponent(options.realm)}` +
      "/protocol/openid-connect/token";
    this.kind = options.username ? "Keycloak password grant" : "Keycloak client credentials";
    addSecret(options.password);
    addSecret(options.clientSecret);
  }

  /**
   * A cached token while it has life left, else a renewed one (one renewal at a time, shared).
   * The wait ends at `wait.timeoutS` (default: the configured timeout) or when `wait.signal`
   * aborts; when every caller has stopped waiting, the token request is abandoned.
   */
  getToken(wait: TokenWait = {}): Promise<string> {
    const issued = this.#issued;
    if (issued && this.#now() < issued.expiresAt) return Promise.resolve(issued.accessToken);
    if (!this.#renewal || this.#renewal.controller.signal.aborted) {
      const controller = new AbortController();
      const renewal: Renewal = {
        controller,
        waiting: 0,
        token: this.#renew(controller.signal).finally(() => {
          if (this.#renewal === renewal) this.#renewal = undefined;
        }),
      };
      this.#renewal = renewal;
    }
    return this.#await(this.#renewal, wait);
  }

  async #await(renewal: Renewal, wait: TokenWait): Promise<string> {
    const timeoutS = wait.timeoutS ?? this.#options.timeoutS ?? DEFAULT_TIMEOUT_S;
    const timeout = AbortSignal.timeout(timeoutS * 1000);
    const signal = wait.signal ? AbortSignal.any([wait.signal, timeout]) : timeout;
    renewal.waiting++;
    try {
      return await untilAborted(renewal.token, signal, () =>
        timeout.aborted
          ? new CredentialsError(
            `could not get an access token from Keycloak: no response within ${timeoutS} s ` +
              "(timed out)",
            "unreachable",
            "timeout",
          )
          : new CredentialsError(
            "cancelled while waiting for an access token from Keycloak",
            "unreachable",
            "network",
          ));
    } finally {
      // The last caller to stop waiting abandons the request (harmless once it is answered).
      if (--renewal.waiting === 0) renewal.controller.abort();
    }
  }

  /** Drops the cached token if it is the one refused. */
  invalidate(token: string): void {
    if (this.#issued?.accessToken === token) this.#issued = undefined;
  }

  async #renew(signal: AbortSignal): Promise<string> {
    const previous = this.#issued;
    if (previous?.refreshToken && this.#now() < previous.refreshExpiresAt) {
      try {
        return this.#keep(
          await this.#request({
            grant_type: "refresh_token",
            refresh_token: previous.refreshToken,
          }, signal),
        );
      } catch (error) {
        // A refused or failed refresh falls back to a full grant below, unless abandoned.
        if (signal.aborted) throw error;
      }
    }
    const o = this.#options;
    const grant: Record<string, string> = o.username
      ? { grant_type: "password", username: o.username, password: o.password ?? "" }
      : { grant_type: "client_credentials" };
    return this.#keep(await this.#request(grant, signal));
  }

  #keep(issued: Issued): string {
    this.#issued = issued;
    return issued.accessToken;
  }

  async #request(grant: Record<string, string>, signal: AbortSignal): Promise<Issued> {
    const o = this.#options;
    const form = new URLSearchParams({ ...grant, client_id: o.clientId, scope: "openid" });
    if (o.clientSecret) form.set("client_secret", o.clientSecret);
    const request = {
      url: this.#endpoint,
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
    };
    // No timeout of its own: bounded by the callers' waits, the last to give up abandons it.
    const started = this.#now();
    const answer = await exchange(request, {
      verifyTls: o.verifyTls ?? true,
      signal,
      timeoutS: o.timeoutS ?? DEFAULT_TIMEOUT_S,
    });
    if (!answer.ok) {
      throw new CredentialsError(
        `could not get an access token from Keycloak: ${answer.error}`,
        "unreachable",
        answer.reason,
      );
    }
    if (answer.status !== 200) throw refusal(this.#endpoint, answer);
    const body = answer.body;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new CredentialsError("Keycloak's token response is not valid JSON", "failed");
    }
    if (!isObject(parsed) || typeof parsed.access_token !== "string") {
      throw new CredentialsError("Keycloak's token response has no access_token", "failed");
    }
    const lifetimeS = Number(parsed.expires_in) > 0 ? Number(parsed.expires_in) : 60;
    const refreshS = Number(parsed.refresh_expires_in) > 0 ? Number(parsed.refresh_expires_in) : 0;
    addSecret(parsed.access_token);
    if (typeof parsed.refresh_token === "string") addSecret(parsed.refresh_token);
    // Renew a little before expiry: a fifth of the lifetime, at most 30 s.
    const margin = Math.min(30_000, lifetimeS * 200);
    return {
      accessToken: parsed.access_token,
      expiresAt: started + lifetimeS * 1000 - margin,
      refreshToken: typeof parsed.refresh_token === "string" ? parsed.refresh_token : undefined,
      refreshExpiresAt: started + refreshS * 1000 - margin,
    };
  }
}

/** What an answer other than 200 from the token URL means, by its status. */
function refusal(endpoint: string, answer: Exchanged & { ok: true }): CredentialsError {
  const status = answer.statusLine;
  if (answer.status === 404) {
    return new CredentialsError(
      `Keycloak's token URL "${endpoint}" was not found (${status})`,
      "not_found",
    );
  }
  if (answer.status >= 300 && answer.status < 400) {
    return redirected(endpoint, status, answer.location);
  }
  const text = keycloakError(answer.body) ?? answer.errorText;
  return new CredentialsError(
    `Keycloak refused to issue an access token: ${status}${text ? `: ${text}` : ""}`,
    [400, 401, 403].includes(answer.status) ? "rejected" : "failed",
  );
}

/**
 * A redirect from the token URL, never followed (it would carry the credentials elsewhere): where
 * it points and, when that is the same token URL elsewhere, the SQUONK2_KEYCLOAK_URL to set.
 */
function redirected(
  endpoint: string,
  status: string,
  location: string | undefined,
): CredentialsError {
  if (location === undefined) {
    return new CredentialsError(
      `Keycloak's token URL "${endpoint}" answers a redirect (${status}) without saying where ` +
        "to; the operator should check SQUONK2_KEYCLOAK_URL",
      "redirected",
    );
  }
  let target = location.slice(0, 500);
  try {
    target = new URL(target, endpoint).href;
  } catch {
    // Not a URL: said as sent.
  }
  const tail = endpoint.slice(endpoint.lastIndexOf("/realms/"));
  const base = target.endsWith(tail) ? ` to ${JSON.stringify(target.slice(0, -tail.length))}` : "";
  return new CredentialsError(
    `Keycloak's token URL "${endpoint}" redirects to ${JSON.stringify(target)} (${status}), ` +
      "which is not followed (a redirect could carry the credentials elsewhere); if that " +
      `address is right, the operator should set SQUONK2_KEYCLOAK_URL${base}`,
    "redirected",
  );
}

/** How long a caller waits for Keycloak by default, in seconds. */
const DEFAULT_TIMEOUT_S = 10;

/** `promise`, or the error `reason()` as soon as `signal` aborts. */
function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  reason: () => Error,
): Promise<T> {
  if (signal.aborted) {
    // Nobody else may be waiting on `promise`: its failure must not go unhandled (a crash).
    promise.catch(() => {});
    return Promise.reject(reason());
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(reason());
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function keycloakError(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isObject(parsed) && typeof parsed.error === "string") {
      const detail = typeof parsed.error_description === "string"
        ? ` (${parsed.error_description})`
        : "";
      return `${parsed.error}${detail}`;
    }
  } catch {
    // Not JSON: the caller falls back to the plain text.
  }
  return undefined;
}
