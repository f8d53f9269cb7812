/**
 * Sends a `Request` and returns the `Response`, honouring the TLS verification setting at run
 * time.
 *
 * Deno's `fetch` verifies certificates and has no per-request switch to stop it (only the
 * process-wide `--unsafely-ignore-certificate-errors` flag). So an `https:` request that must not
 * be verified goes through `node:https` with `rejectUnauthorized: false`, adapted to the same
 * `Request` → `Response` shape; everything else goes through `fetch`. The client above sees one
 * function and cannot tell which path was taken.
 *
 * @module
 */
import https from "node:https";
import type { IncomingMessage } from "node:http";

/** How one request is sent. */
export interface SendOptions {
  /** Verify the server's TLS certificate (https only). */
  verifyTls: boolean;
  /** Aborts the request and the reading of its body. */
  signal: AbortSignal;
}

/** A request ready to send: what `fetch` takes, without building a `Request` first. */
export interface Outgoing {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: BodyInit;
}

/** Sends `request`; rejects as `fetch` does when no response comes. */
export function send(request: Outgoing, options: SendOptions): Promise<Response> {
  if (options.verifyTls || !request.url.startsWith("https:")) {
    return fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: options.signal,
      redirect: "manual",
    });
  }
  return sendUnverified(new Request(request.url, request), options.signal);
}

async function sendUnverified(request: Request, signal: AbortSignal): Promise<Response> {
  signal.throwIfAborted();
  const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
  const headers: Record<string, string> = {};
  request.headers.forEach((value, key) => headers[key] = value);
  if (body) headers["content-length"] = String(body.byteLength);

  return await new Promise<Response>((resolve, reject) => {
    const req = https.request(request.url, {
      method: request.method,
      headers,
      rejectUnauthorized: false,
      // No roots are needed when nothing is verified; without this, Deno's node:tls loads the
      // system's CA store, which needs --allow-sys.
      ca: [],
      signal,
    }, (res) => resolve(toResponse(res, signal)));
    req.on("error", (error) => reject(signal.aborted ? signal.reason : error));
    req.end(body);
  });
}

function toResponse(res: IncomingMessage, signal: AbortSignal): Response {
  const headers = new Headers();
  for (const [key, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(key, v);
  }
  const status = res.statusCode ?? 0;
  const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      res.on("data", (chunk: Uint8Array) => controller.enqueue(new Uint8Array(chunk)));
      res.on("end", () => controller.close());
      res.on("error", (error) => controller.error(signal.aborted ? signal.reason : error));
      res.on("aborted", () => controller.error(new Error("connection closed before the end")));
    },
    cancel() {
      res.destroy();
    },
  });
  if (noBody) res.resume();
  return new Response(noBody ? null : stream, {
    status,
    statusText: res.statusMessage ?? "",
    headers,
  });
}
