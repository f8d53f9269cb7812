/**
 * A server process spoken to over stdio, started with exactly the command, arguments, environment
 * and working folder a desktop app would use (the SDK's client transport adds variables of its
 * own), and a port on which nothing listens, to stand for an unreachable registry.
 *
 * @module
 */

/** The JSON-RPC answer to one request. */
export interface RpcAnswer {
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/** A spawned MCP server on stdio; dispose of it to stop it. */
export class StdioProcess implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<string>;
  #buffered = "";
  #nextId = 1;
  /** Everything the server wrote to stderr, once it has exited. */
  readonly stderr: Promise<string>;

  constructor(
    command: string,
    args: string[],
    options: { env: Record<string, string>; cwd: string },
  ) {
    this.#child = new Deno.Command(command, {
      args,
      cwd: options.cwd,
      env: options.env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.stderr = new Response(this.#child.stderr).text();
  }

  /** Sends a request and waits (at most 60 s) for its answer. */
  async request(method: string, params: Record<string, unknown> = {}): Promise<RpcAnswer> {
    const id = this.#nextId++;
    await this.#send({ jsonrpc: "2.0", id, method, params });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`No answer to ${method} within 60 s`)), 60_000);
    });
    try {
      return await Promise.race([this.#answerTo(id), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a notification. */
  async notify(method: string): Promise<void> {
    await this.#send({ jsonrpc: "2.0", method });
  }

  /** Closes stdin, as a client does when it is done, and waits for the exit code. */
  async close(): Promise<number> {
    await this.#writer.close().catch(() => {});
    const { code } = await this.#child.status;
    await this.#reader.cancel().catch(() => {});
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
    await this.close();
    await this.stderr;
  }

  async #send(message: Record<string, unknown>): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${JSON.stringify(message)}\n`));
  }

  async #answerTo(id: number): Promise<RpcAnswer> {
    for (;;) {
      const end = this.#buffered.indexOf("\n");
      if (end >= 0) {
        const line = this.#buffered.slice(0, end);
        this.#buffered = this.#buffered.slice(end + 1);
        const message = JSON.parse(line);
        if (message.id === id) return message;
        continue;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`The server exited: ${await this.stderr}`);
      this.#buffered += value;
    }
  }
}

/** A loopback port on which nothing listens. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Variables that leave no registry reachable: every request but loopback goes to a proxy on a
 * closed port. (Pointing NPM_CONFIG_REGISTRY elsewhere would not do: Deno keys its npm cache by
 * registry, so a filled cache would look empty.)
 */
export function noRegistry(): Record<string, string> {
  const nowhere = `http://127.0.0.1:${closedPort()}/`;
  return { HTTPS_PROXY: nowhere, HTTP_PROXY: nowhere, NO_PROXY: "127.0.0.1,localhost" };
}
