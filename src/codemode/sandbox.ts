/**
 * Runs a program in a separate Deno process with no permissions at all, capped in memory, time,
 * calls and output. The program's only way out is `as.<op>()`: each is a message on the child's
 * stdout that the server answers by calling `gate`, the same path a tool call takes.
 *
 * @module
 */
import { builtinModules } from "node:module";
import { logLine } from "../log.ts";
import { runner, type RunnerStart } from "./_runner.ts";
import { Slots } from "./_slots.ts";

/** What `as.<op>()` resolves to: an ApiRv. */
export interface GateResult {
  success: boolean;
  msg: Record<string, unknown>;
  http_status_code: number;
}

/** Performs one `as.<op>()` call exactly as a tool call would be performed. */
export type Gate = (
  name: string,
  args: Record<string, unknown>,
  signal: AbortSignal,
) => Promise<GateResult>;

/** The caps of one run. */
export interface SandboxLimits {
  /** Wall-clock seconds before the process is killed. */
  timeoutS: number;
  /** Most calls to `as` in one run. */
  maxCalls: number;
  /** Most bytes (UTF-8) of log plus returned value. */
  maxOutputBytes: number;
  /** The JavaScript heap's cap, in MiB. */
  memoryMb: number;
}

/** The defaults: 30 s, 200 calls, 64 KiB of output, 128 MiB of heap. */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = {
  timeoutS: 30,
  maxCalls: 200,
  maxOutputBytes: 65_536,
  memoryMb: 128,
};

/** The longest program accepted, in UTF-8 bytes. */
export const MAX_PROGRAM_BYTES = 65_536;

/** One `as` call of a run, as reported. */
export interface CallRecord {
  operation: string;
  http_status_code: number;
  success: boolean;
}

/** What a run gives back: an ApiRv whose msg holds the value, the log, the calls and the time. */
export interface ProgramRv {
  success: boolean;
  msg: {
    value?: unknown;
    error?: string;
    log: string[];
    calls: CallRecord[];
    time_ms: number;
  };
  http_status_code: 0;
}

/** How to run one program. */
export interface RunOptions {
  gate: Gate;
  /** The operations `as` offers. */
  operations: readonly string[];
  /** The server's tools that are not operations (so not on `as`), named as such if called. */
  tools?: readonly string[];
  limits?: Partial<SandboxLimits>;
  /** Aborts the run (the tool call was cancelled, the server is stopping). */
  signal?: AbortSignal;
  /** Who runs it, for the per-caller cap: the same key for every call of one caller (default ""). */
  caller?: string;
}

/** Bytes the process may allocate beyond the heap cap (Deno's own start needs ~600 MiB). */
const PROCESS_OVERHEAD_MB = 896;

/**
 * An import map sending each of Node's built-in modules to a module that throws, saying why:
 * without it `import("node:fs")` fails deep in Node's start-up, with a message about `console`.
 */
const NODE_REFUSED = (() => {
  const imports: Record<string, string> = {};
  for (const name of builtinModules) {
    const specifier = name.startsWith("node:") ? name : `node:${name}`;
    const error = `${specifier} is not available in code mode: the program has only as`;
    imports[specifier] = `data:text/javascript,${
      encodeURIComponent(`throw new Error(${JSON.stringify(error)})`)
    }`;
  }
  return `data:application/json,${encodeURIComponent(JSON.stringify({ imports }))}`;
})();

/** The process's arguments: `deno run` with no permission flag, no config, no remote code. */
function denoArgs(limits: SandboxLimits): string[] {
  const source = `(${runner.toString()})()`;
  return [
    "run",
    "--no-prompt",
    "--no-config",
    "--no-lock",
    "--no-remote",
    "--no-npm",
    "--no-code-cache",
    `--import-map=${NODE_REFUSED}`,
    `--v8-flags=--max-old-space-size=${limits.memoryMb}`,
    `data:application/javascript,${encodeURIComponent(source)}`,
  ];
}

/** util-linux's prlimit, by absolute path: the permission names exactly this file. */
const PRLIMIT = "/usr/bin/prlimit";

let prlimitMissing = false;

/**
 * Where the child's Deno keeps its own state: a path under a file, so nothing can be created
 * there. Without a permission, Deno still writes localStorage and the Cache API under its
 * directory, where a later run, of any caller, would find them.
 */
const NO_DENO_DIR = Deno.build.os === "windows" ? "NUL\\deno" : "/dev/null/deno";

/** Spawns the sandbox: under `prlimit` (a cap on all memory, array buffers and workers included) where it exists. */
function spawn(limits: SandboxLimits): Deno.ChildProcess {
  const options = {
    // Not the server's own folder, whose path would tell a program where and whose it is.
    cwd: "/",
    clearEnv: true,
    env: { NO_COLOR: "1", DENO_DIR: NO_DENO_DIR },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  } as const;
  const args = denoArgs(limits);
  if (!prlimitMissing && Deno.build.os === "linux") {
    const bytes = (limits.memoryMb + PROCESS_OVERHEAD_MB) * 1024 * 1024;
    // CPU seconds: the server kills the child at its timeout; this is for a server that died
    // (killed hard, out of memory) and so cannot, leaving an endless loop running for ever.
    const cpuS = Math.ceil(2 * limits.timeoutS) + 5;
    try {
      return new Deno.Command(PRLIMIT, {
        ...options,
        args: [`--data=${bytes}`, `--cpu=${cpuS}`, "--", Deno.execPath(), ...args],
      }).spawn();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      prlimitMissing = true;
      logLine(`squonk2-as-mcp: ${PRLIMIT} not found: a program's memory cap covers its heap only`);
    }
  }
  return new Deno.Command(Deno.execPath(), { ...options, args }).spawn();
}

const encoder = new TextEncoder();

/** The UTF-8 length of a string. */
function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}

/** The longest line the child may write (a call's arguments may carry a 1 MB asset). */
const MAX_LINE_CHARS = 2 * 1024 * 1024;

/** How deeply a returned value may nest (the server's own handling of it recurses). */
export const MAX_VALUE_DEPTH = 64;

/** Whether `value` nests deeper than `limit` arrays or objects (looked at without recursion). */
function nestsDeeper(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== "object" || item === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/** How many programs may run at once in this process. */
export const MAX_RUNNING = 4;

/** How many programs one caller may run at once: less than all, so others always have room. */
export const MAX_RUNNING_PER_CALLER = 2;

/** The longest a call waits for a place to run, in seconds (and at most half its timeout_s). */
export const MAX_QUEUE_WAIT_S = 5;

/** The places programs run in, shared by every caller of the process. */
const slots = new Slots({
  total: MAX_RUNNING,
  perCaller: MAX_RUNNING_PER_CALLER,
  maxWaiting: 4 * MAX_RUNNING,
});

type Outcome = { value: unknown } | { error: string };

/** One run: the child, its channel and what it has done so far. */
class Run {
  readonly calls: CallRecord[] = [];
  readonly log: string[] = [];
  readonly outcome: Promise<Outcome>;
  #finish!: (outcome: Outcome) => void;
  #done = false;
  #outputBytes = 0;
  #inFlight = new Set<Promise<void>>();
  #abort = new AbortController();
  #stdin: WritableStreamDefaultWriter<Uint8Array>;

  constructor(
    readonly child: Deno.ChildProcess,
    readonly key: string,
    readonly options: RunOptions,
    readonly limits: SandboxLimits,
  ) {
    this.outcome = new Promise((resolve) => this.#finish = resolve);
    this.#stdin = child.stdin.getWriter();
  }

  /** The signal gate calls get: aborted when the run ends early. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Ends the run with `outcome`, once; an error also cancels calls in flight. */
  end(outcome: Outcome): void {
    if (this.#done) return;
    this.#done = true;
    if ("error" in outcome) this.#abort.abort(new Error(outcome.error));
    this.#finish(outcome);
  }

  /** Waits for the calls still in flight. */
  async settle(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /** Sends a line to the child, ignoring a child that has gone. */
  async write(value: unknown): Promise<void> {
    await this.#stdin.write(encoder.encode(JSON.stringify(value) + "\n")).catch(() => {});
  }

  /** Handles one line of the child's stdout. */
  handle(line: string): void {
    if (this.#done) return;
    if (!line.startsWith(this.key + " ")) {
      return this.end({
        error:
          "Program stopped: it wrote to the channel directly (use console.log for output and as.<op>() for calls)",
      });
    }
    const message = JSON.parse(line.slice(this.key.length + 1));
    // Only what the runner writes is accepted, whoever holds the key.
    const { t, id, op, args, text, error } = message ?? {};
    if (t === "call" && Number.isSafeInteger(id) && this.options.operations.includes(op)) {
      if (typeof args === "object" && args !== null && !Array.isArray(args)) {
        return this.#call(id, op, args);
      }
    }
    if (t === "log" && typeof text === "string") {
      return this.#output(text, () => this.log.push(text));
    }
    if (t === "fail" && typeof error === "string") {
      return this.#output(error, () => this.end({ error }));
    }
    if (t === "done" && "value" in message) {
      const json = JSON.stringify(message.value);
      this.#output(json, () => {});
      if (this.#done) return;
      if (nestsDeeper(message.value, MAX_VALUE_DEPTH)) {
        return this.end({
          error: `Program stopped: its value nests more than ${MAX_VALUE_DEPTH} levels deep`,
        });
      }
      return this.end({ value: message.value });
    }
    throw new TypeError("not a message");
  }

  #output(text: string, keep: () => void): void {
    this.#outputBytes += utf8Bytes(text);
    if (this.#outputBytes > this.limits.maxOutputBytes) {
      return this.end({
        error:
          `Program stopped: its output (log and value) passed ${this.limits.maxOutputBytes} bytes`,
      });
    }
    keep();
  }

  #call(id: number, op: string, args: Record<string, unknown>): void {
    if (this.calls.length >= this.limits.maxCalls) {
      return this.end({
        error: `Program stopped: it made more than ${this.limits.maxCalls} calls to as`,
      });
    }
    const record: CallRecord = { operation: op, http_status_code: 0, success: false };
    this.calls.push(record);
    const work = (async () => {
      const rv: GateResult = this.options.operations.includes(op)
        ? await this.options.gate(op, args, this.signal).catch((error) => ({
          success: false,
          msg: { error: `Cannot ${op}: ${error instanceof Error ? error.message : error}` },
          http_status_code: 0,
        }))
        : {
          success: false,
          msg: { error: `Cannot ${op}: not an operation this server offers` },
          http_status_code: 0,
        };
      record.success = rv.success;
      record.http_status_code = rv.http_status_code;
      await this.write({ id, rv });
    })();
    this.#inFlight.add(work);
    work.finally(() => this.#inFlight.delete(work));
  }
}

/** Feeds the child's stdout to `run`, line by line, stopping it at an overlong line. */
async function readChannel(run: Run): Promise<void> {
  let buffered = "";
  for await (const chunk of run.child.stdout.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let at: number;
    while ((at = buffered.indexOf("\n")) >= 0) {
      run.handle(buffered.slice(0, at));
      buffered = buffered.slice(at + 1);
    }
    if (buffered.length > MAX_LINE_CHARS) {
      run.end({
        error: `Program stopped: it wrote a line of more than ${MAX_LINE_CHARS} characters`,
      });
      return;
    }
  }
}

/** The first few KiB of the child's stderr (enough to recognise a crash), the rest drained. */
async function readStderr(child: Deno.ChildProcess): Promise<string> {
  let text = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    if (text.length < 8192) text += chunk;
  }
  return text;
}

/** Why a process ended without an answer; V8's last words tell which memory cap was met. */
function exitError(status: Deno.CommandStatus, stderr: string, limits: SandboxLimits): string {
  if (/JavaScript heap out of memory|Reached heap limit/i.test(stderr)) {
    return `Program stopped: it used more than its memory cap (${limits.memoryMb} MiB of heap)`;
  }
  // A new isolate (a Worker's) reserves its code space, which the process's cap leaves no room for.
  if (/Failed to reserve virtual memory for CodeRange/i.test(stderr)) {
    return "Program stopped: it reached the sandbox's memory limit (a Worker cannot start within it)";
  }
  if (/out of memory|allocation failed|Cannot allocate/i.test(stderr)) {
    return "Program stopped: it reached the sandbox's memory limit";
  }
  if (status.signal) return `Program stopped: its process ended by ${status.signal}`;
  return `Program ended without returning (exit code ${status.code})`;
}

function result(run: Run | undefined, outcome: Outcome, started: number): ProgramRv {
  const msg = {
    ...outcome,
    log: run?.log ?? [],
    calls: run?.calls ?? [],
    time_ms: Math.round(performance.now() - started),
  };
  return { success: "value" in outcome, msg, http_status_code: 0 };
}

/**
 * Runs `program` (TypeScript or JavaScript, the body of an async function of `as`) in the
 * sandbox and gives back its value, log, calls and time, or why it was stopped.
 *
 * @example
 * ```ts
 * const rv = await runProgram("return (await as.get_units()).msg", { gate, operations: ["get_units"] });
 * ```
 */
export async function runProgram(program: string, options: RunOptions): Promise<ProgramRv> {
  const started = performance.now();
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  if (utf8Bytes(program) > MAX_PROGRAM_BYTES) {
    return result(
      undefined,
      { error: `The program is longer than ${MAX_PROGRAM_BYTES} bytes` },
      started,
    );
  }
  if ((Deno.build as { standalone?: boolean }).standalone) {
    return result(undefined, {
      error:
        "Code mode needs a Deno runtime: the compiled single executable cannot start the sandbox",
    }, started);
  }
  const place = await slots.take(options.caller ?? "", {
    waitMs: Math.min(MAX_QUEUE_WAIT_S, limits.timeoutS / 2) * 1000,
    signal: options.signal,
  });
  if ("refused" in place) return result(undefined, { error: place.refused }, started);
  let run: Run | undefined;
  try {
    const key = crypto.randomUUID();
    run = new Run(spawn(limits), key, options, limits);
    return await supervise(run, program, started);
  } catch (error) {
    const why = error instanceof Deno.errors.NotCapable
      ? "the server may not start the sandbox process (see README: Code mode)"
      : error instanceof Error
      ? error.message
      : String(error);
    return result(run, { error: `Cannot run the program: ${why}` }, started);
  } finally {
    place.release();
  }
}

/** Starts the program in `run`, watches its caps, and cleans up. */
async function supervise(run: Run, program: string, started: number): Promise<ProgramRv> {
  const { limits, child } = run;
  const stderr = readStderr(child);
  const channel = readChannel(run).catch(() =>
    run.end({ error: "Program stopped: it wrote something that is not a message" })
  );
  // The wait for a place counts within timeout_s: the call as a whole keeps to it.
  const timer = setTimeout(
    () => run.end({ error: `Program stopped after ${limits.timeoutS} s (its timeout_s)` }),
    limits.timeoutS * 1000 - (performance.now() - started),
  );
  const onAbort = () => run.end({ error: "Program stopped: the call was cancelled" });
  run.options.signal?.addEventListener("abort", onAbort);
  if (run.options.signal?.aborted) onAbort();
  child.status.then(async (status) => {
    await channel;
    run.end({ error: exitError(status, await stderr, limits) });
  });
  const start: RunnerStart = {
    key: run.key,
    program,
    ops: [...run.options.operations],
    tools: [...run.options.tools ?? []],
  };
  await run.write(start);
  const outcome = await run.outcome;
  clearTimeout(timer);
  run.options.signal?.removeEventListener("abort", onAbort);
  // Killed before waiting for the calls in flight: a child that no longer reads its answers
  // (busy, or blocked writing) would otherwise hold their writes, and the run, for ever.
  try {
    child.kill("SIGKILL");
  } catch {
    // It has exited already.
  }
  await run.settle();
  await child.status;
  await stderr;
  return result(run, outcome, started);
}
