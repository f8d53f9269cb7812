/**
 * One HTTP exchange with a service beside the Account Server (Keycloak's token URL, say), with
 * the client's TLS rule and its words for what went wrong: the answer read whole, or why none
 * came. The transport and failure helpers behind it stay private to this folder.
 *
 * @module
 */
import {
  describeNoResponse,
  type NoResponseReason,
  noResponseReason,
  serverErrorText,
  statusLine,
} from "./_failure.ts";
import { type Outgoing, send } from "./_transport.ts";
import { readLimited, TooLarge } from "../body.ts";

export type { Outgoing };

/** How an exchange is made. */
export interface ExchangeOptions {
  /** Verify the server's TLS certificate (https only). */
  verifyTls: boolean;
  /** Aborts the request and the reading of its answer. */
  signal: AbortSignal;
  /** Said in the message when the signal aborted because time ran out. */
  timeoutS: number;
  /** Whether the signal's abort means time ran out (default: whenever it aborted). */
  timedOut?: () => boolean;
  /** An answer longer than this many bytes is refused unread (default 1 MiB). */
  maxBytes?: number;
}

/** An answer read whole, or why none came. */
export type Exchanged =
  | {
    ok: true;
    status: number;
    /** `404 Not Found`. */
    statusLine: string;
    body: string;
    /** The server's own explanation, for an answer that is not a success. */
    errorText: string;
    /** The Location header, as sent (a redirect is never followed). */
    location?: string;
  }
  | { ok: false; error: string; reason: NoResponseReason };

/** Sends `request` and reads its answer; never throws. */
export async function exchange(request: Outgoing, options: ExchangeOptions): Promise<Exchanged> {
  try {
    const response = await send(request, { verifyTls: options.verifyTls, signal: options.signal });
    const max = options.maxBytes ?? 1024 * 1024;
    const bytes = response.body
      ? await readLimited(response.body, max, { signal: options.signal })
      : new Uint8Array();
    const body = new TextDecoder().decode(bytes);
    const type = response.headers.get("content-type");
    return {
      ok: true,
      status: response.status,
      statusLine: statusLine(response.status, response.statusText),
      body,
      errorText: response.ok ? "" : serverErrorText(body, type),
      location: response.headers.get("location") ?? undefined,
    };
  } catch (error) {
    if (error instanceof TooLarge) {
      return {
        ok: false,
        error: `the answer is larger than ${error.max} bytes`,
        reason: "network",
      };
    }
    const timedOut = options.timedOut?.() ?? options.signal.aborted;
    return {
      ok: false,
      error: describeNoResponse(error, {
        timeoutS: options.timeoutS,
        timedOut,
        host: new URL(request.url).host,
        verifyTls: options.verifyTls,
      }),
      reason: noResponseReason(error, timedOut),
    };
  }
}
