/**
 * How tests spawn the server: `deno run` with exactly the permissions of the `start` or `demo`
 * task but without `--env-file`, in an environment holding only what Deno needs. So neither a
 * developer's `.env` in the checkout nor their shell's variables change a test's outcome. A test
 * of the task itself (which reads `.env`) runs it in a copy of the checkout that has none.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/** The checkout's root folder, where the server is spawned. */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** The arguments of `deno` that run `task` (without --env-file), followed by `args`. */
export function serverArgs(task: "start" | "demo", ...args: string[]): string[] {
  const words = denoJson.tasks[task].split(/\s+/).filter(Boolean);
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new Error(`the ${task} task no longer starts with "deno run"`);
  }
  return [...words.slice(1).filter((w) => !/^--env-file(=|$)/.test(w)), ...args];
}

/** The variables Deno itself needs (its cache, PATH), `NO_COLOR`, and `vars`; nothing else. */
export function hermeticEnv(vars: Record<string, string> = {}): Record<string, string> {
  const keep = ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"];
  const kept = keep.flatMap((name) => {
    const value = Deno.env.get(name);
    return value === undefined ? [] : [[name, value]];
  });
  return { ...Object.fromEntries(kept), NO_COLOR: "1", ...vars };
}

/** Copies `from` into `to`, folders and files. */
async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) await copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    else if (entry.isFile) await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

/**
 * A copy of the checkout in a new temporary folder (its path ends in "/"), with what the tasks
 * need (src/, scripts/, deno.json, deno.lock) and no `.env`: where a test runs a task itself.
 * Dispose of it to remove it.
 */
export async function checkoutCopy(): Promise<AsyncDisposable & { path: string }> {
  const path = `${await Deno.makeTempDir({ prefix: "as-mcp-checkout-" })}/`;
  for (const folder of ["src", "scripts"]) await copyTree(`${ROOT}${folder}`, `${path}${folder}`);
  for (const file of ["deno.json", "deno.lock"]) await Deno.copyFile(`${ROOT}${file}`, path + file);
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** A server started by `servingWith`: its URL and stderr so far, until disposed. */
export interface HttpServing extends AsyncDisposable {
  url: string;
  stderr(): string;
  /** Whether a line `squonk2-as-mcp: <line>` appears on stderr within 5 s. */
  says(line: string): Promise<boolean>;
  status: Promise<Deno.CommandStatus>;
}

/**
 * `deno task start` over HTTP on a free port, hermetic (no `.env`, a cleared environment plus
 * `env`), with `args`, and at most `maxFiles` open file descriptors if given.
 */
export async function servingWith(
  { env, args, maxFiles }: { env: Record<string, string>; args: string[]; maxFiles?: number },
): Promise<HttpServing> {
  const deno = [
    Deno.execPath(),
    ...serverArgs("start", "--transport", "http", "--port", "0", ...args),
  ];
  const limited = ["-c", `ulimit -n ${maxFiles} && exec "$@"`, "limited", ...deno];
  const child = new Deno.Command(maxFiles ? "bash" : deno[0]!, {
    args: maxFiles ? limited : deno.slice(1),
    cwd: ROOT,
    clearEnv: true,
    env: hermeticEnv(env),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const started = Promise.withResolvers<string>();
  const reading = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += text;
      const url = /serving MCP at (http:\/\/\S+\/mcp)/.exec(stderr)?.[1];
      if (url) started.resolve(url);
    }
    started.reject(new Error(`the server did not start: ${stderr}`));
  })();
  const url = await started.promise.catch(async (error) => {
    await child.status;
    throw error;
  });
  return {
    url,
    stderr: () => stderr,
    status: child.status,
    // Lines may still be on their way through the pipe: wait up to 5 s for this one.
    async says(line) {
      for (let waited = 0; waited < 5000; waited += 20) {
        if (said(stderr).includes(line)) return true;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return false;
    },
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
      await reading;
    },
  };
}

/** The lines of `stderr` that start with the server's name, without it. */
export function said(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("squonk2-as-mcp: "))
    .map((line) => line.slice("squonk2-as-mcp: ".length));
}

/** Runs `deno args…` from the checkout, hermetic, to the end: its exit code and stderr. */
export async function runDeno(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: hermeticEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}
