/**
 * The Account Server client: every operation of the table, callable by name, each resolving to
 * an ApiRv exactly as the Python `AsApi` returns it. It never throws for bad input, HTTP or
 * network failures.
 *
 * @module
 */
import { checkParams } from "./check.ts";
import { logLine } from "../log.ts";
import {
  findOperation,
  type Operation,
  type OperationName,
  type Params,
  type ParamsOf,
} from "./operations.ts";
import {
  describeNoResponse,
  type FailureReason,
  isRecord,
  noResponseReason,
  serverErrorText,
  statusLine,
  truncate,
} from "./_failure.ts";
import { type Outgoing, send } from "./_transport.ts";
import { readLimited, TooLarge } from "../body.ts";
import { permittedEnv, pythonYes, readVariable, text, yesNo } from "../settings.ts";

/** A call that `AsApi.check` accepted: its operation and its parsed parameters. */
export interface CheckedCall {
  readonly operation: Operation;
  readonly params: Readonly<Params>;
}

/** The calls `check` made, so `send` can refuse one built by hand. */
const CHECKED = new WeakSet<CheckedCall>();

/** What every operation returns: `{ success, msg, http_status_code }`. */
export interface ApiRv {
  /** The status is one of the operation's success codes. */
  success: boolean;
  /** The decoded body on success (`{}` when empty); `{ error }` on failure. */
  msg: Record<string, unknown>;
  /** The response's status, or 0 when no response came. */
  http_status_code: number;
  /**
   * Why a call with status 0 failed, when the client knows: for hints and logs. Not enumerable,
   * so the ApiRv's JSON and equality stay the Python client's three fields.
   */
  readonly reason?: FailureReason;
}

/** Per-call options. */
export interface CallOptions {
  /** The Account Server access token (a Keycloak JWT), for operations that need one. */
  token?: string;
  /** Give up after this many seconds (default 4). */
  timeoutS?: number;
  /** Abandons the call (e.g. when an MCP request is cancelled). */
  signal?: AbortSignal;
  /**
   * Reads the file a `content_file` parameter names (default: `Deno.readFile`). A server confines
   * uploads with it; what it throws is reported as the parameter's error, and nothing is sent.
   */
  readFile?: (path: string) => Promise<Uint8Array<ArrayBuffer>>;
}

/** How a client is set up. Values left out come from the environment. */
export interface AsApiOptions {
  /** The Account Server API URL, e.g. `https://example.com/account-server-api`. */
  url?: string;
  /** Verify the server's TLS certificate (default true). */
  verifySslCert?: boolean;
  /** Log each request's method, URL, status and duration to stderr. */
  debugRequests?: boolean;
  /**
   * Reads an environment variable; defaults to `Deno.env.get`, where a variable the permissions
   * deny is an error (as for the server), not an unset value.
   */
  env?: (name: string) => string | undefined;
  /** A response body larger than this is refused, to protect memory (default 64 MiB). */
  maxResponseBytes?: number;
}

/** The default per-call timeout, in seconds, as in the Python client. */
export const DEFAULT_TIMEOUT_S = 4;

/** The default largest response body the client reads. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Reads a body as text, refusing to hold more than `max` bytes, however it is chunked. */
async function readText(response: Response, max: number, signal: AbortSignal): Promise<string> {
  if (!response.body) return "";
  const length = response.headers.get("content-length");
  const declared = length === null ? NaN : Number(length);
  if (declared > max) {
    await response.body.cancel();
    throw new TooLarge(max);
  }
  // A declared length within the cap is read in one go (much faster): the HTTP framing holds the
  // body to that length. An undeclared one is read chunk by chunk into one buffer, to the cap.
  if (declared >= 0) return await response.text();
  const bytes = await readLimited(response.body, max, {
    signal,
    expected: declared >= 0 ? declared : undefined,
  });
  return new TextDecoder().decode(bytes);
}

/**
 * The variables a client falls back on, read by the server's rules (`settings.ts`): blank is
 * unset, yes/no means "yes" or "no" (anything else is refused), and the TLS setting keeps the
 * Python client's rule, with the server's warning.
 */
const FROM_ENV = {
  url: { env: "SQUONK2_ASAPI_URL", parse: text, help: "Account Server API URL" },
  verifySslCert: {
    env: "SQUONK2_ASAPI_VERIFY_SSL_CERT",
    parse: pythonYes,
    default: "yes",
    help: "Verify the Account Server's TLS certificate",
  },
  debugRequests: {
    env: "SQUONK2_API_DEBUG_REQUESTS",
    parse: yesNo,
    default: "no",
    help: "Log each request to stderr",
  },
} as const;

/** This process's environment; a variable the permissions deny is an error, not unset. */
const readEnv = permittedEnv(
  "this program",
  "add it to --allow-env, or give the value in AsApiOptions",
);

/**
 * Checks an Account Server URL: http or https, no credentials, no query or fragment. Returns it
 * without trailing slashes, or the reason it is refused.
 */
export function checkApiUrl(url: string): { url: string } | { error: string } {
  const shown = JSON.stringify(withoutSecrets(url));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { error: `${shown} is not a URL` };
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return { error: `${shown} must start with http:// or https://` };
  }
  if (parsed.username || parsed.password) {
    return { error: `${shown} must not contain a user name or password` };
  }
  if (parsed.search || parsed.hash) {
    return { error: `${shown} must not have a query or fragment (not shown here)` };
  }
  return { url: parsed.href.replace(/\/+$/, "") };
}

/** A URL as it may be shown in an error: no user name, password, query or fragment. */
function withoutSecrets(url: string): string {
  return url.replace(/[?#][\s\S]*$/, "").replace(/^([^/]*\/\/)?[^/]*@/, "$1");
}

const TOKEN_PATTERN = /^[\x21-\x7e]{1,16384}$/;

/**
 * A client for the Squonk2 Account Server, mirroring the Python `squonk2.as_api.AsApi`.
 *
 * @example
 * ```ts
 * const api = new AsApi({ url: "https://example.com/account-server-api" });
 * const rv = await api.call("get_unit", { unit_id: "unit-..." }, { token });
 * if (rv.success) console.log(rv.msg.name);
 * ```
 */
export class AsApi {
  #url: string | undefined;
  #urlError: string | undefined;
  #verifySslCert: boolean;
  #debug: boolean;
  #maxResponseBytes: number;

  /**
   * A client from `options`, falling back to `SQUONK2_ASAPI_URL` and friends, read as the server
   * reads them. Throws a ConfigError (one line, naming the variable) for a yes/no variable that
   * is neither, or a variable the permissions deny; an unusable URL fails each call instead.
   */
  constructor(options: AsApiOptions = {}) {
    const env = options.env ?? readEnv;
    const tls = options.verifySslCert === undefined
      ? readVariable(FROM_ENV.verifySslCert, env)
      : { verify: options.verifySslCert };
    if (tls?.warning) logLine(tls.warning);
    this.#verifySslCert = tls?.verify ?? true;
    this.#debug = options.debugRequests ?? readVariable(FROM_ENV.debugRequests, env) ?? false;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const url = options.url ?? readVariable(FROM_ENV.url, env);
    if (url) {
      const checked = checkApiUrl(url);
      if ("url" in checked) this.#url = checked.url;
      else this.#urlError = `the Account Server URL is not usable: ${checked.error}`;
    }
  }

  /** Replaces the URL and the TLS setting; throws a TypeError for an unusable URL. */
  setApiUrl(url: string, options: { verifySslCert?: boolean } = {}): void {
    const checked = checkApiUrl(url);
    if ("error" in checked) throw new TypeError(`Invalid Account Server URL: ${checked.error}`);
    this.#url = checked.url;
    this.#urlError = undefined;
    this.#verifySslCert = options.verifySslCert ?? true;
  }

  /** The URL in use (undefined when none is set) and whether TLS certificates are verified. */
  getApiUrl(): { url: string | undefined; verifySslCert: boolean } {
    return { url: this.#url, verifySslCert: this.#verifySslCert };
  }

  /** Calls operation `name` with its parameters, type-checked. */
  call<N extends OperationName>(
    name: N,
    params: ParamsOf<N>,
    options: CallOptions = {},
  ): Promise<ApiRv> {
    return this.callByName(name, params, options);
  }

  /** Calls an operation whose name and parameters are only known at run time. */
  async callByName(name: string, params: unknown, options: CallOptions = {}): Promise<ApiRv> {
    const checked = this.check(name, params);
    return "error" in checked
      ? failure(0, checked.error, "invalid")
      : await this.send(checked, options);
  }

  /**
   * Checks a call before it is sent: the operation exists, every parameter is known and valid,
   * and the rules across parameters hold. `also` names parameters the caller handles itself
   * (suggested for misspellings, never sent). Send the result with `send`.
   */
  check(
    name: string,
    params: unknown,
    options: { also?: readonly string[] } = {},
  ): CheckedCall | { error: string } {
    const row = findOperation(name);
    if (!row) return { error: `Unknown operation "${name}"` };
    const parsed = checkParams(row.params, params, { label: name, also: options.also });
    if ("error" in parsed) return { error: `Cannot ${name}: invalid input: ${parsed.error}` };
    const rule = row.check?.(parsed.params);
    if (rule) return { error: `Cannot ${name}: invalid input: ${rule}` };
    const call: CheckedCall = { operation: row, params: parsed.params };
    CHECKED.add(call);
    return call;
  }

  /** Sends a call that `check` accepted, resolving to its ApiRv. */
  async send(call: CheckedCall, options: CallOptions = {}): Promise<ApiRv> {
    const row = call.operation;
    const refuse = (why: string, reason: FailureReason = "invalid") =>
      failure(0, `Cannot ${row.name}: ${why}`, reason);
    if (!CHECKED.has(call)) return refuse("the call was not checked with check()");
    const timeoutS = options.timeoutS ?? DEFAULT_TIMEOUT_S;
    if (!(Number.isFinite(timeoutS) && timeoutS > 0 && timeoutS <= 3600)) {
      return refuse(`timeout_s: must be a number of seconds above 0 and at most 3600`);
    }
    if (this.#urlError) return refuse(this.#urlError, "no_url");
    if (!this.#url) {
      return refuse(
        "no Account Server URL is set: set SQUONK2_ASAPI_URL or call setApiUrl(url)",
        "no_url",
      );
    }
    if (row.token && !options.token) return refuse("no access token was given");
    if (options.signal?.aborted) {
      return refuse("the call was cancelled before it was sent", "cancelled");
    }
    if (row.token && !TOKEN_PATTERN.test(options.token!)) {
      return refuse("the access token has characters a token cannot have");
    }

    const started = performance.now();
    let request: Outgoing;
    try {
      request = await buildRequest(this.#url, row, call.params, {
        token: row.token ? options.token : undefined,
        readFile: options.readFile,
      });
    } catch (error) {
      return refuse(error instanceof Error ? error.message : String(error));
    }
    // Reading a content_file counts towards timeout_s: the exchange gets what is left of it.
    const leftS = timeoutS - (performance.now() - started) / 1000;
    if (leftS <= 0) {
      return refuse(
        `reading content_file took all of timeout_s (${timeoutS} s); nothing was sent`,
      );
    }
    return await this.#exchange(row, request, { timeoutS, leftS }, options.signal);
  }

  async #exchange(
    row: Operation,
    request: Outgoing,
    time: { timeoutS: number; leftS: number },
    cancel: AbortSignal | undefined,
  ): Promise<ApiRv> {
    const { timeoutS } = time;
    const timeout = AbortSignal.timeout(time.leftS * 1000);
    const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
    const started = performance.now();
    const log = (outcome: string) => {
      if (!this.#debug) return;
      const ms = Math.round(performance.now() - started);
      logLine(`[as-api] ${request.method} ${request.url} -> ${outcome} (${ms} ms)`);
    };
    let response: Response;
    let body: string;
    try {
      response = await send(request, { verifyTls: this.#verifySslCert, signal });
      body = await readText(response, this.#maxResponseBytes, signal);
    } catch (error) {
      if (error instanceof TooLarge) {
        log(`${response!.status}, body over ${this.#maxResponseBytes} bytes`);
        return failure(
          response!.status,
          `Cannot ${row.name}: ${statusLine(response!.status, response!.statusText)}: ` +
            `the response is larger than ${this.#maxResponseBytes} bytes; ask for less`,
        );
      }
      const cancelled = cancel?.aborted && !timeout.aborted;
      const why = cancelled
        ? "the call was cancelled before the Account Server answered"
        : describeNoResponse(error, {
          timeoutS,
          timedOut: timeout.aborted,
          host: new URL(request.url).host,
          verifyTls: this.#verifySslCert,
        });
      log(`no response: ${why}`);
      const reason = cancelled ? "cancelled" : noResponseReason(error, timeout.aborted);
      return failure(0, `Cannot ${row.name}: ${why}`, reason);
    }
    log(String(response.status));
    const redirect = redirectText(response, request.url, this.#url!);
    if (redirect) return failure(response.status, `Cannot ${row.name}: ${redirect}`);
    return decode(row, response, body);
  }
}

function failure(status: number, error: string, reason?: FailureReason): ApiRv {
  const rv: ApiRv = { success: false, msg: { error }, http_status_code: status };
  if (reason) Object.defineProperty(rv, "reason", { value: reason, enumerable: false });
  return rv;
}

/**
 * For a redirect, which is never followed (it could carry the token to another host): the status,
 * where it pointed and the base URL the operator could set instead. Undefined for other answers.
 */
function redirectText(response: Response, requestUrl: string, baseUrl: string): string | undefined {
  const location = response.headers.get("location");
  if (response.status < 300 || response.status > 399 || location === null) return undefined;
  let target: string;
  try {
    target = new URL(location, requestUrl).href;
  } catch {
    target = location;
  }
  const line = statusLine(response.status, response.statusText);
  const said = `${line}: the Account Server redirects to ${JSON.stringify(truncate(target))}, ` +
    "which is not followed (a redirect could carry the credentials elsewhere)";
  const suffix = requestUrl.slice(baseUrl.length);
  const base = [suffix, suffix.split("?")[0]!]
    .filter((end) => end && target.endsWith(end))
    .map((end) => target.slice(0, -end.length))[0];
  const to = base ? JSON.stringify(truncate(base)) : "the Account Server's address there";
  return `${said}; if that address is right, the operator should set SQUONK2_ASAPI_URL to ${to}`;
}

function decode(row: Operation, response: Response, body: string): ApiRv {
  const status = response.status;
  const line = statusLine(status, response.statusText);
  if (!row.success.includes(status)) {
    const text = serverErrorText(body, response.headers.get("content-type"));
    return failure(status, `Cannot ${row.name}: ${line}${text ? `: ${text}` : ""}`);
  }
  if (!body.trim()) return { success: true, msg: {}, http_status_code: status };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    const start = JSON.stringify(truncate(body.trim(), 80));
    return failure(status, `Cannot ${row.name}: ${line}: the response is not valid JSON: ${start}`);
  }
  return {
    success: true,
    msg: isRecord(parsed) ? parsed : { value: parsed },
    http_status_code: status,
  };
}

/** Builds the request for `row`: path parameters encoded as single segments, query and body. */
export async function buildRequest(
  baseUrl: string,
  row: Operation,
  params: Params,
  options: Pick<CallOptions, "token" | "readFile"> = {},
): Promise<Outgoing> {
  const token = options.token;
  const path = row.path.includes("{")
    ? row.path.replace(
      /\{(\w+)\}/g,
      (_, param: string) => encodeURIComponent(String(params[param])),
    )
    : row.path;
  const query = row.query ? new URLSearchParams(queryOf(row, params)).toString() : "";
  const url = `${baseUrl}${path}${query ? `?${query}` : ""}`;
  const headers: Record<string, string> = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;

  let body: BodyInit | undefined;
  if (row.body && row.encoding === "multipart") {
    body = await multipartBody(row, params, options.readFile ?? readLocalFile);
  } else if (row.body) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(Object.fromEntries(bodyEntries(row, params)));
  }
  return { url, method: row.method, headers, body };
}

function queryOf(row: Operation, params: Params): Record<string, string> {
  if (typeof row.query === "function") return row.query(params);
  const query: Record<string, string> = {};
  for (const [key, param] of Object.entries(row.query ?? {})) {
    if (params[param] !== undefined) query[key] = String(params[param]);
  }
  return query;
}

function bodyEntries(row: Operation, params: Params): [string, unknown][] {
  const entries: [string, unknown][] = [];
  for (const [field, source] of Object.entries(row.body ?? {})) {
    const param = typeof source === "string" ? source : source.param;
    const value = params[param];
    if (value === undefined) continue;
    if (typeof source !== "string" && "when" in source && !(Number(value) > 0)) continue;
    entries.push([field, value]);
  }
  return entries;
}

async function readLocalFile(path: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot read ${JSON.stringify(path)}: ${why}`);
  }
}

async function multipartBody(
  row: Operation,
  params: Params,
  readFile: (path: string) => Promise<Uint8Array<ArrayBuffer>>,
): Promise<FormData> {
  const form = new FormData();
  for (const [field, value] of bodyEntries(row, params)) {
    const source = row.body?.[field];
    if (typeof source === "object" && "file" in source) {
      const path = String(value);
      let bytes: Uint8Array<ArrayBuffer>;
      try {
        bytes = await readFile(path);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        throw new Error(`${source.param}: ${why}`);
      }
      form.append(field, new Blob([bytes]), path.split(/[\\/]/).pop() || "content");
    } else {
      form.append(field, String(value));
    }
  }
  return form;
}
