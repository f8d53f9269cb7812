/**
 * Turns what went wrong (a status and body, or an error with no response) into the words of an
 * ApiRv's `msg.error`.
 *
 * @module
 */

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** How much of a server's error text is kept. */
export const MAX_ERROR_TEXT = 300;

/** `404 Not Found`, from the status and the response's own reason phrase. */
export function statusLine(status: number, statusText: string): string {
  const reason = STATUS_TEXT[status] ?? statusText.trim();
  return reason ? `${status} ${reason}` : String(status);
}

/** Shortens `text` to `max` characters, marking the cut. */
export function truncate(text: string, max = MAX_ERROR_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * The server's own explanation in an error body: the `error` field of a JSON body, or the text
 * of a plain or HTML body with markup and runs of white space removed.
 */
export function serverErrorText(body: string, contentType: string | null): string {
  const trimmed = body.trim();
  if (!trimmed) return "";
  if (/json/i.test(contentType ?? "") || /^[{[]/.test(trimmed)) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (isRecord(parsed) && typeof parsed.error === "string") return truncate(parsed.error);
      return truncate(JSON.stringify(parsed));
    } catch {
      // Not JSON after all: fall through to plain text.
    }
  }
  if (/html/i.test(contentType ?? "") || /^<(!doctype|html|head|body)/i.test(trimmed)) {
    const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(trimmed)?.[1];
    const text = (title ?? trimmed)
      .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ")
      .replace(/<[^>]*>/g, " ");
    return truncate(collapse(decodeEntities(text)));
  }
  return truncate(collapse(trimmed));
}

function collapse(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function decodeEntities(text: string): string {
  return text.replace(
    /&(amp|lt|gt|quot|#39|nbsp);/g,
    (_, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", nbsp: " " })[e] ?? "",
  );
}

/** Whether `value` is a plain JSON object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Why no response came: the cause a hint or a log line is chosen by, never parsed from text. */
export type NoResponseReason =
  /** No answer within the call's timeout. */
  | "timeout"
  /** Nothing listens at that address. */
  | "refused"
  /** The host name does not resolve. */
  | "dns"
  /** The server's TLS certificate is not trusted. */
  | "tls"
  /** The connection closed before the response was complete. */
  | "dropped"
  /** Any other failure to send or receive. */
  | "network";

/** Why a call failed before or without an answer: a cause of no response, or a refusal. */
export type FailureReason =
  | NoResponseReason
  /** Refused before sending: an argument is invalid. */
  | "invalid"
  /** Refused before sending: no usable Account Server URL is set. */
  | "no_url"
  /** The caller cancelled the call. */
  | "cancelled";

/** Which kind of failure `error` (from `fetch` or `node:https`) is. */
export function noResponseReason(error: unknown, timedOut: boolean): NoResponseReason {
  if (timedOut) return "timeout";
  const words = errorWords(error);
  if (/certificate|UnknownIssuer|self[- ]signed|CaUsedAsEndEntity|NotValidForName/i.test(words)) {
    return "tls";
  }
  if (/ECONNREFUSED|Connection refused|os error 111/i.test(words)) return "refused";
  if (/dns error|failed to lookup|ENOTFOUND|EAI_AGAIN|Name or service not known/i.test(words)) {
    return "dns";
  }
  if (/reading a body|ECONNRESET|connection closed|socket hang up|unexpected end/i.test(words)) {
    return "dropped";
  }
  return "network";
}

/** What to say when no response came, from the error `fetch` or `node:https` gave. */
export function describeNoResponse(
  error: unknown,
  context: { timeoutS: number; timedOut: boolean; host: string; verifyTls: boolean },
): string {
  const words = errorWords(error);
  switch (noResponseReason(error, context.timedOut)) {
    case "timeout":
      return `no response within ${context.timeoutS} s (timed out)`;
    case "tls": {
      const detail = /invalid peer certificate: ([\w()]+)/.exec(words)?.[1] ?? "not trusted";
      return `TLS certificate of "${context.host}" is not trusted (${detail}); ` +
        "if you trust this server, set SQUONK2_ASAPI_VERIFY_SSL_CERT=no " +
        "or call setApiUrl(url, { verifySslCert: false })";
    }
    case "refused":
      return `connection to "${context.host}" refused (nothing is listening there)`;
    case "dns":
      return `host name "${context.host}" could not be resolved`;
    case "dropped":
      return "the connection closed before the response was complete";
    case "network":
      return `request failed: ${truncate(collapse(words) || "unknown error")}`;
  }
}

function errorWords(error: unknown, depth = 0): string {
  if (depth > 4 || error === undefined || error === null) return "";
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return [error.message, typeof code === "string" ? code : "", errorWords(error.cause, depth + 1)]
    .filter(Boolean)
    .join(": ");
}
