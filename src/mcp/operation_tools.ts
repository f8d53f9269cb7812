/**
 * The operation table's rows as tools. A call is checked once by the client's own check, then
 * goes through the gate every Account Server call passes: the caller's or the operator's token,
 * confirmation of deletes, uploads only from the operator's folder, one retry of a read whose
 * renewable token was refused, and a result built by `toolResult`.
 *
 * @module
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import {
  type ApiRv,
  type AsApi,
  type CheckedCall,
  DEFAULT_TIMEOUT_S,
  type Operation,
  OPERATIONS,
  pathParams,
} from "../api/mod.ts";
import type { TokenSource } from "../auth/mod.ts";
import { readUpload, type UploadLimits } from "./files.ts";
import { credentialsResult, toolResult } from "./result.ts";
import { selectTools } from "./selection.ts";
import { annotationsFor, type CallContext, type Tool } from "./tool.ts";

/** What the operation tools need from the server. */
export interface OperationToolOptions {
  api: AsApi;
  /** The operator's credentials, used when a call brings no token of its own. */
  tokens: TokenSource;
  /** The real path of the only folder `content_file` may read from; none: uploads refused. */
  fileRoot?: string;
  /** Results larger than this many bytes of JSON are cut. */
  maxResultBytes?: number;
  /** The tools the server offers (default: all): hints name no other. */
  tools?: readonly string[];
  /** Uploads larger than this many bytes are refused (default 1 MiB). */
  maxUploadBytes?: number;
}

/** The name of the parameter every tool takes besides its own. */
export const TIMEOUT_PARAM = "timeout_s";

/** One tool per row of the operation table. */
export function operationTools(options: OperationToolOptions): Tool[] {
  const offered = new Set(options.tools ?? selectTools());
  return OPERATIONS.map((row) => ({
    name: row.name,
    toolset: row.toolset,
    kind: row.kind,
    title: row.title,
    description: row.description,
    params: row.params,
    annotations: annotationsFor(row.kind, row.title),
    prepare(args) {
      const checked = options.api.check(row.name, args, { also: [TIMEOUT_PARAM] });
      if ("error" in checked) return checked;
      return (context) => runOperation(checked, context, { ...options, offered });
    },
  }));
}

/** A failure decided here, before anything reached the Account Server. */
export function notSent(error: string): ApiRv {
  return { success: false, msg: { error }, http_status_code: 0 };
}

/** `Cannot <name>: <why>`, decided before anything reached the Account Server. */
export function refusal(name: string, why: string): ApiRv {
  return notSent(`Cannot ${name}: ${why}`);
}

/** "Delete unit: unit \"unit-…\"": what a delete acts on, named by its path parameters. */
function describeTarget(row: Operation, params: Readonly<Record<string, unknown>>): string {
  const what = pathParams(row).map((n) => `${n.replace(/_id$/, "")} "${params[n]}"`).join(", ");
  return what ? `${row.title}: ${what}` : row.title;
}

/**
 * The seconds a call may spend waiting on the network, shared by every wait it makes (a token
 * from Keycloak, then the Account Server), so that the whole call keeps to its `timeout_s`.
 * Time spent waiting for the user to confirm is not counted.
 */
class Budget {
  #leftMs: number;
  /** When the wait under way began, if one is. */
  #since: number | undefined;
  constructor(seconds: number) {
    this.#leftMs = seconds * 1000;
  }
  /** Milliseconds left, the wait under way counted. */
  get leftMs(): number {
    return this.#leftMs - (this.#since === undefined ? 0 : performance.now() - this.#since);
  }
  /** When the time left runs out, from now (`performance.now()` time). */
  get deadline(): number {
    return performance.now() + this.leftMs;
  }
  /** Runs `work` with the seconds left (never less than a few milliseconds), counting its time. */
  async spend<T>(work: (timeoutS: number) => Promise<T>): Promise<T> {
    this.#since = performance.now();
    try {
      return await work(Math.max(Math.round(this.#leftMs), 5) / 1000);
    } finally {
      this.#leftMs -= performance.now() - this.#since;
      this.#since = undefined;
    }
  }
}

/** The token a call is sent with: the caller's own, else the operator's. */
async function tokenFor(
  row: Operation,
  context: CallContext,
  tokens: TokenSource,
  budget: Budget,
): Promise<{ token?: string } | { error: unknown }> {
  if (!row.token) return {};
  if (context.callerToken !== undefined) return { token: context.callerToken };
  try {
    const token = await budget.spend((timeoutS) =>
      tokens.getToken({ signal: context.signal, timeoutS })
    );
    return { token };
  } catch (error) {
    return { error };
  }
}

async function runOperation(
  call: CheckedCall,
  context: CallContext,
  options: OperationToolOptions & { offered: ReadonlySet<string> },
): Promise<CallToolResult> {
  const row = call.operation;
  const hints = {
    maxBytes: options.maxResultBytes,
    offered: options.offered,
    row,
    callerToken: context.callerToken !== undefined,
    renewable: options.tokens.renewable,
  };
  const budget = new Budget(context.timeoutS ?? DEFAULT_TIMEOUT_S);
  const token = await tokenFor(row, context, options.tokens, budget);
  const secrets = [context.callerToken, "token" in token ? token.token : undefined];
  // The cut of a large answer gets what is left of the call's time when the answer is in.
  const result = (rv: ApiRv) => toolResult(rv, { ...hints, secrets, deadline: budget.deadline });
  if ("error" in token) return credentialsResult(row.name, token.error, hints);
  if (row.kind === "delete") {
    const message = `${describeTarget(row, call.params)}. This cannot be undone. Go ahead?`;
    if (!(await context.confirm(message))) {
      return result(refusal(row.name, "the user did not confirm; nothing was sent"));
    }
  }
  const send = (withToken: string | undefined) =>
    budget.spend((timeoutS) =>
      options.api.send(call, {
        token: withToken,
        timeoutS,
        signal: context.signal,
        readFile: (path) =>
          readUpload(options.fileRoot, path, uploadLimits(context, budget, options)),
      })
    );
  let rv = await send(token.token);
  const own = context.callerToken === undefined;
  if (rv.http_status_code === 401 && own && token.token) {
    options.tokens.invalidate(token.token);
    // A refused token was not used to change anything, but only a read is sent again: a tool
    // call reaches the Account Server with a change at most once, whatever happens.
    if (row.kind === "read" && options.tokens.renewable) {
      const renewed = await tokenFor(row, context, options.tokens, budget);
      if ("token" in renewed && renewed.token) rv = await send(renewed.token);
    }
  }
  return result(rv);
}

/** An upload is held to the operator's size limit, the call's timeout_s and its cancellation. */
function uploadLimits(
  context: CallContext,
  budget: Budget,
  options: OperationToolOptions,
): UploadLimits {
  // What is left of the call's time: the token may already have taken some of it.
  const timeout = AbortSignal.timeout(Math.max(1, budget.leftMs));
  return { maxBytes: options.maxUploadBytes, signal: AbortSignal.any([context.signal, timeout]) };
}
