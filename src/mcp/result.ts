/**
 * A tool's result from an operation's ApiRv: structured, repeated as JSON text, an error when it
 * failed, with a hint for the model; Account Server text cleaned of hidden characters, errors
 * redacted, and results above the size limit cut. A failure the operator must fix is also
 * written to stderr.
 *
 * @module
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { ApiRv } from "../api/mod.ts";
import { holdsSecret, logLine, redact, redactValue } from "../log.ts";
import { CredentialsError } from "../auth/mod.ts";
import { credentialsHint, type HintContext, hintFor, operatorMustAct } from "./hints.ts";
import { byteLength, DEFAULT_MAX_RESULT_BYTES, limitMsg } from "./limit.ts";
import { cleanValue, mayHideText } from "./sanitize.ts";

/** How a result is built: its size limit, and what its hint may say. */
export interface ResultOptions extends HintContext {
  /** Results larger than this many bytes of JSON are cut (default 64 KiB). */
  maxBytes?: number;
  /** Tokens to mask wherever they appear (the caller's, the one the call used). */
  secrets?: readonly (string | undefined)[];
  /** When the call's time is up (`performance.now()` time): a cut then keeps only its note. */
  deadline?: number;
}

/**
 * An ApiRv as a tool result: structured, repeated as JSON text, an error when it failed. What
 * came from the Account Server is cleaned of hidden characters, and every token in it (the
 * operator's, those in `options.secrets`) is masked, whatever the Account Server echoed back.
 */
export function toolResult(rv: ApiRv, options: ResultOptions = {}): CallToolResult {
  const hint = rv.success ? undefined : hintFor(rv, options);
  const secrets = options.secrets ?? [];
  if (!rv.success && operatorMustAct(rv, options)) {
    logFailure(redact(String(rv.msg.error), secrets), hint);
  }
  try {
    return build(rv, options.maxBytes ?? DEFAULT_MAX_RESULT_BYTES, hint, secrets, options.deadline);
  } catch (error) {
    // Cleaning and cutting walk the answer; one nested thousands of levels deep overflows them.
    if (!(error instanceof RangeError)) throw error;
    const name = options.row?.name ?? "call";
    const deep = {
      success: false,
      msg: { error: `Cannot ${name}: the answer is nested too deeply to show` },
      http_status_code: rv.http_status_code,
    };
    return build(deep, options.maxBytes ?? DEFAULT_MAX_RESULT_BYTES, undefined);
  }
}

/** The result of a call `name` that failed because no token could be had; logged to stderr. */
export function credentialsResult(
  name: string,
  error: unknown,
  options: ResultOptions = {},
): CallToolResult {
  const why = error instanceof CredentialsError ? error.message : "could not get a token";
  const text = `Cannot ${name}: ${why}`;
  const hint = error instanceof CredentialsError ? credentialsHint(error, options) : undefined;
  logFailure(text, hint);
  const rv = { success: false, msg: { error: text }, http_status_code: 0 };
  return build(rv, options.maxBytes ?? DEFAULT_MAX_RESULT_BYTES, hint);
}

function logFailure(error: unknown, hint: string | undefined): void {
  logLine(`squonk2-as-mcp: ${String(error)}${hint ? ` (${hint})` : ""}`);
}

function build(
  rv: ApiRv,
  maxBytes: number,
  hint: string | undefined,
  secrets: readonly (string | undefined)[] = [],
  deadline?: number,
): CallToolResult {
  // Serialise once; clean, mask and cut only when the text shows there is something to do.
  let msg = rv.msg;
  let json = JSON.stringify(msg);
  if (mayHideText(json)) {
    msg = cleanValue(msg);
    json = JSON.stringify(msg);
  }
  if (holdsSecret(json, secrets)) {
    msg = redactValue(msg, secrets);
    json = JSON.stringify(msg);
  }
  // Room for the hint added below: `,"hint":"…"`.
  const addedBytes = hint ? 8 + byteLength(JSON.stringify(hint)) : 0;
  const limited = limitMsg(msg, maxBytes, { json, addedBytes, deadline });
  if (limited !== msg) {
    msg = limited;
    json = JSON.stringify(msg);
  }
  if (!rv.success) {
    const error = msg.error;
    msg = { ...msg, error, ...(hint && !("hint" in msg) ? { hint } : {}) };
    json = JSON.stringify(msg);
  }
  const out = { success: rv.success, msg, http_status_code: rv.http_status_code };
  return {
    content: [{
      type: "text",
      text: `{"success":${rv.success},"msg":${json},"http_status_code":${rv.http_status_code}}`,
    }],
    structuredContent: out,
    isError: !out.success,
  };
}
