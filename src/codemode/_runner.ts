/**
 * The fixed script the sandboxed Deno process runs. It is sent to the child as the source text of
 * `runner` (a `data:` URL main module), so it must not refer to anything outside itself.
 *
 * The child has no permissions at all. Its first stdin line brings a per-run key, the program and
 * the offered operations. The runner takes what it needs from the global objects before the
 * program runs, so nothing the program patches (JSON, prototypes, `Deno.stdout`) reaches the
 * channel or the key: every line it writes starts with the key, built by string concatenation
 * only, and the program never holds a reference to the key or the writer.
 *
 * Messages, child to server: `<key> {"t":"call","id":N,"op":"name","args":{}}`,
 * `<key> {"t":"log","text":"..."}`, `<key> {"t":"done","value":...}`,
 * `<key> {"t":"fail","error":"..."}`. Server to child: `{"id":N,"rv":{...}}`.
 *
 * @module
 */

/** The first line the server sends. */
export interface RunnerStart {
  key: string;
  program: string;
  ops: string[];
  /** The server's other tools, which are not operations and so not on `as`. */
  tools: string[];
}

/**
 * The runner itself; stringified, never called in the server.
 *
 * It stays one function, longer than the project's usual limit, because the child receives it as
 * source text (`runner.toString()`): a helper outside it would not be there. Its steps are named
 * inner functions sharing the built-ins taken at the top, before the program can patch any; the
 * last lines run them in order.
 */
export async function runner(): Promise<void> {
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const inspect = Deno.inspect;
  const freeze = Object.freeze;
  const encoder = new TextEncoder();
  const encode = encoder.encode.bind(encoder);
  const stdout = Deno.stdout;
  const writeSync = stdout.writeSync.bind(stdout);
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  const pending = new Map<number, (rv: unknown) => void>();
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const apply = Reflect.apply;
  const indexOf = String.prototype.indexOf;
  const slice = String.prototype.slice;
  const includes = Array.prototype.includes;
  // The bytes of a line hold the key: every method touching them is taken now, since a program
  // may replace %TypedArray%.prototype.subarray or the `length` getter to be handed them.
  const typedArray = Object.getPrototypeOf(Uint8Array.prototype);
  const subarray = typedArray.subarray;
  const byteCount = Object.getOwnPropertyDescriptor(typedArray, "length")!.get!;
  const read = ReadableStreamDefaultReader.prototype.read;

  let buffered = "";
  /** The next line from the server, or undefined at the end of input. */
  async function nextLine(): Promise<string | undefined> {
    for (;;) {
      const at = apply(indexOf, buffered, ["\n"]) as number;
      if (at >= 0) {
        const line = apply(slice, buffered, [0, at]) as string;
        buffered = apply(slice, buffered, [at + 1]) as string;
        return line;
      }
      const { value, done } = await (apply(read, reader, []) as Promise<
        ReadableStreamReadResult<string>
      >);
      if (done) return undefined;
      buffered += value;
    }
  }

  const first = await nextLine();
  if (first === undefined) return;
  const start = parse(first) as RunnerStart;
  const key = start.key;
  /** Writes one message; the payload holds nothing of the runner's, only what the program gave. */
  function send(payload: string): void {
    const bytes = encode(key + " " + payload + "\n");
    const length = apply(byteCount, bytes, []) as number;
    let written = 0;
    while (written < length) written += writeSync(apply(subarray, bytes, [written]));
  }

  let nextId = 0;
  function call(op: string, args: unknown): Promise<unknown> {
    if (args !== undefined && (typeof args !== "object" || args === null)) {
      throw new TypeError(`as.${op}() takes one object of parameters`);
    }
    const id = ++nextId;
    const json = stringify(args ?? {});
    if (typeof json !== "string") {
      throw new TypeError(`as.${op}() takes one object of parameters, as JSON`);
    }
    const promise = new Promise((resolve) => apply(mapSet, pending, [id, resolve]));
    send('{"t":"call","id":' + id + ',"op":' + stringify(op) + ',"args":' + json + "}");
    return promise;
  }

  /** `as`: one frozen method per offered operation; anything else is refused with a reason. */
  function operations(): Record<string, (args?: unknown) => Promise<unknown>> {
    const methods: Record<string, (args?: unknown) => Promise<unknown>> = Object.create(null);
    for (const op of start.ops) methods[op] = freeze((args?: unknown) => call(op, args));
    freeze(methods);
    return new Proxy(methods, {
      get(target, name) {
        if (typeof name === "symbol" || name === "then" || name === "toJSON") return undefined;
        const method = target[name];
        if (method) return method;
        if (apply(includes, start.tools, [name])) {
          throw new TypeError(
            `as.${name} is not available inside run_program: ${name} is a tool, not an Account Server operation; call it as a tool`,
          );
        }
        throw new TypeError(
          `as.${name} is not an operation this server offers (switched off by the operator, a write in read-only mode, or misspelt): run_program's description lists those offered`,
        );
      },
      set() {
        throw new TypeError("as cannot be changed");
      },
      defineProperty() {
        throw new TypeError("as cannot be changed");
      },
      deleteProperty() {
        throw new TypeError("as cannot be changed");
      },
      setPrototypeOf() {
        throw new TypeError("as cannot be changed");
      },
    });
  }

  /** Sends what the program logs, through `console`, as log messages. */
  function captureConsole(): void {
    const log = (...items: unknown[]) => {
      let text = "";
      for (const item of items) {
        text += (text ? " " : "") + (typeof item === "string" ? item : inspect(item, { depth: 4 }));
      }
      send('{"t":"log","text":' + stringify(text) + "}");
    };
    globalThis.console = freeze({
      ...console,
      log,
      info: log,
      debug: log,
      warn: log,
      error: log,
    }) as Console;
  }

  /** Hands each answer the server sends to the call waiting for it, until the input ends. */
  async function answerCalls(): Promise<void> {
    for (;;) {
      const line = await nextLine();
      if (line === undefined) return;
      const message = parse(line) as { id: number; rv: unknown };
      const resolve = apply(mapGet, pending, [message.id]) as ((rv: unknown) => void) | undefined;
      apply(mapDelete, pending, [message.id]);
      resolve?.(message.rv);
    }
  }

  /** No state outlives a run: storage that Deno keeps on disk without a permission goes. */
  function forgetStorage(): void {
    for (const name of ["localStorage", "sessionStorage", "caches"]) {
      delete (globalThis as Record<string, unknown>)[name];
    }
  }

  /** The program as a module whose default export takes `as`. */
  function programUrl(): string {
    return "data:application/typescript;base64," +
      btoa(
        String.fromCharCode(
          ...encode("export default async function (as) {" + start.program + "\n}"),
        ),
      );
  }

  /** An error as one line: its name, message and where in the program it was thrown. */
  function describe(error: unknown): string {
    if (!(error instanceof Error)) return inspect(error);
    const message = String(error.message).replace(
      /data:application\/typescript[^\s)]*/g,
      "program",
    );
    const text = `${error.name}: ${message}`;
    const found = /data:application\/typescript[^\s)]*:(\d+):(\d+)/.exec(String(error.stack));
    return found ? `${text} (at line ${found[1]}, column ${found[2]} of the program)` : text;
  }

  /** A rejection nobody handled fails the run, saying where. */
  function failOnUnhandled(): void {
    globalThis.addEventListener("unhandledrejection", (event) => {
      event.preventDefault();
      send(
        '{"t":"fail","error":' + stringify("Unhandled rejection: " + describe(event.reason)) +
          "}",
      );
    });
  }

  /** Runs the program with `as` and sends what it returned (as JSON) or why it failed. */
  async function run(url: string, api: unknown): Promise<void> {
    try {
      const module = await import(url);
      const value = await module.default(api);
      let json: string | undefined;
      try {
        json = stringify(value === undefined ? null : value);
      } catch (error) {
        throw new TypeError(`The returned value is not JSON: ${(error as Error).message}`);
      }
      send('{"t":"done","value":' + (json ?? "null") + "}");
    } catch (error) {
      send('{"t":"fail","error":' + stringify(describe(error)) + "}");
    }
  }

  const api = operations();
  captureConsole();
  answerCalls();
  forgetStorage();
  const url = programUrl();
  failOnUnhandled();
  await run(url, api);
}
