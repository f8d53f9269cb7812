/**
 * A tool's result from an operation's ApiRv: structured, repeated as JSON text, an error when it
 * failed, with a hint for the model; Account Server text cleaned of hidden characters, errors
 * redacted, and results above the size limit cut.
 *
 * @module
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { ApiRv } from "../api/mod.ts";
import { redact } from "../log.ts";
import { DEFAULT_MAX_RESULT_BYTES, limitMsg } from "./limit.ts";
import { cleanValue, mayHideText } from "./sanitize.ts";

const NO_ANSWER_HINT =
  "No answer from the Account Server: it may be down or slow; try again, or with a larger timeout_s";

const HINTS: Readonly<Record<number, string>> = {
  400: "The Account Server refused the request as invalid: read the error and fix the arguments",
  401:
    "The server's access token is missing, invalid or expired: the operator must fix its credentials",
  403: "The caller is not a member of that Organisation or Unit, or not an admin (see get_account)",
  404:
    "Nothing has that id: list what exists first (get_organisations, get_units, get_available_products, get_available_assets)",
};

/**
 * An ApiRv as a tool result: structured, repeated as JSON text, an error when it failed. What
 * came from the Account Server is cleaned of hidden characters; errors pass through redaction.
 */
export function toolResult(rv: ApiRv, maxBytes = DEFAULT_MAX_RESULT_BYTES): CallToolResult {
  // Serialise once; clean and cut only when the text shows there is something to do.
  let msg = rv.msg;
  let json = JSON.stringify(msg);
  if (mayHideText(json)) {
    msg = cleanValue(msg);
    json = JSON.stringify(msg);
  }
  const limited = limitMsg(msg, maxBytes, json);
  if (limited !== msg) {
    msg = limited;
    json = JSON.stringify(msg);
  }
  if (!rv.success) {
    const error = typeof msg.error === "string" ? redact(msg.error) : msg.error;
    const noAnswer = rv.http_status_code === 0 &&
      /no response|timed out|refused|closed before|could not be resolved/.test(String(error));
    const hint = noAnswer ? NO_ANSWER_HINT : HINTS[rv.http_status_code];
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
