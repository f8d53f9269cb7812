/**
 * `deno task scale`: the scale-out check. Instances of the server in stateless mode run behind
 * nginx (deploy/nginx.conf, with free loopback ports), round-robin, against the stub Account
 * Server. One MCP client session makes several hundred calls through nginx:
 *
 * 1. with one instance, then with three: calls per second;
 * 2. with three, killing one (SIGKILL) halfway: only calls in flight at that moment may fail,
 *    every call started after it must succeed, and each instance's share of the calls is counted
 *    from its own log (its `[as-api]` debug lines).
 *
 * The figures go into BENCHMARKS.md between the `scale:` markers. nginx is Debian's package: the
 * script uses the one on PATH (or /usr/sbin/nginx), else installs it with apt-get, else says why
 * it cannot run and exits 1. Everything listens on 127.0.0.1 only.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { startStub, type StubServer } from "../src/stub/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CALLS = 600;
const CONCURRENCY = 8;
/** Each Account Server answer takes this long during the kill run, so calls are in flight. */
const KILL_RUN_DELAY_MS = 15;

/** A running server instance and what it logged. */
interface Instance {
  port: number;
  child: Deno.ChildProcess;
  log: string[];
  done: Promise<void>;
}

/** One call as the client saw it. */
interface Call {
  startedAt: number;
  endedAt: number;
  ok: boolean;
}

/** What one run of the session found. */
interface Run {
  calls: Call[];
  seconds: number;
  perInstance: number[];
  killedAt?: number;
}

async function findNginx(): Promise<string> {
  for (const candidate of ["nginx", "/usr/sbin/nginx"]) {
    if (await runs(candidate, ["-v"])) return candidate;
  }
  console.error("scale: nginx not found; installing Debian's package with apt-get");
  const apt = async (args: string[]) =>
    await runs("apt-get", args, { DEBIAN_FRONTEND: "noninteractive" });
  if ((await apt(["update", "-qq"])) && (await apt(["install", "-y", "-qq", "nginx"]))) {
    if (await runs("/usr/sbin/nginx", ["-v"])) return "/usr/sbin/nginx";
  }
  throw new Error(
    "nginx is not installed and `apt-get install nginx` did not work (it needs root and " +
      "Debian's package lists): install nginx and run `deno task scale` again",
  );
}

async function runs(command: string, args: string[], env = {}): Promise<boolean> {
  try {
    const output = await new Deno.Command(command, { args, env, stdout: "null", stderr: "null" })
      .output();
    return output.success;
  } catch {
    return false;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function startInstance(stub: StubServer, port: number, publicHost: string) {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", `${ROOT}src/main.ts`],
    cwd: ROOT,
    env: {
      SQUONK2_ASAPI_URL: stub.url,
      SQUONK2_API_DEBUG_REQUESTS: "yes",
      SQUONK2_MCP_TRANSPORT: "http",
      SQUONK2_MCP_STATELESS: "yes",
      SQUONK2_MCP_HOST: "127.0.0.1",
      SQUONK2_MCP_PORT: String(port),
      SQUONK2_MCP_ALLOWED_HOSTS: publicHost,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  });
  const child = command.spawn();
  const log: string[] = [];
  const { promise: listening, resolve: ready } = Promise.withResolvers<void>();
  const done = (async () => {
    const lines = child.stderr.pipeThrough(new TextDecoderStream());
    let rest = "";
    for await (const chunk of lines) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        log.push(line);
        if (line.includes("serving MCP at")) ready();
      }
    }
    ready();
  })();
  await listening;
  if (!log.some((line) => line.includes("serving MCP at"))) {
    throw new Error(`instance on port ${port} did not start:\n${log.join("\n")}`);
  }
  return { port, child, log, done } satisfies Instance;
}

/** deploy/nginx.conf with its ports and paths made this run's. */
function nginxConfig(listen: number, ports: number[]): string {
  const shipped = Deno.readTextFileSync(`${ROOT}deploy/nginx.conf`);
  const servers = ports.map((port) =>
    `        server 127.0.0.1:${port} max_fails=1 fail_timeout=10s;`
  ).join("\n");
  const replaced = shipped
    .replace(/( {8}server 127\.0\.0\.1:810\d [^\n]*\n)+/, `${servers}\n`)
    .replace("listen 127.0.0.1:8100;", `listen 127.0.0.1:${listen};`);
  if (replaced === shipped || !replaced.includes(`:${listen};`)) {
    throw new Error("deploy/nginx.conf no longer has the upstream and listen lines expected");
  }
  return replaced;
}

async function startNginx(nginx: string, listen: number, ports: number[]) {
  const prefix = await Deno.makeTempDir({ prefix: "squonk2-scale-" });
  await Deno.writeTextFile(`${prefix}/nginx.conf`, nginxConfig(listen, ports));
  const child = new Deno.Command(nginx, {
    args: ["-p", prefix, "-c", `${prefix}/nginx.conf`, "-g", "daemon off;"],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: listen })).close();
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    async stop() {
      child.kill("SIGQUIT");
      await child.status;
      await Deno.remove(prefix, { recursive: true });
    },
  };
}

/**
 * One client session of `CALLS` calls, `CONCURRENCY` at a time. `midway` runs once, halfway, and
 * resolves when it is done: a call started before then may have reached the killed instance.
 */
async function session(url: string, token: string, midway?: () => Promise<void>): Promise<Run> {
  const client = new Client({ name: "scale", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  const calls: Call[] = [];
  let next = 0;
  let killing: Promise<void> | undefined;
  let killedAt: number | undefined;
  const started = performance.now();
  const worker = async () => {
    while (next < CALLS) {
      next++;
      const call: Call = { startedAt: performance.now(), endedAt: 0, ok: false };
      calls.push(call);
      try {
        const result = await client.callTool({ name: "get_account", arguments: {} });
        call.ok = !(result as CallToolResult).isError;
      } catch {
        call.ok = false;
      }
      call.endedAt = performance.now();
      if (midway && !killing && calls.length >= CALLS / 2) {
        killing = midway().then(() => {
          killedAt = performance.now();
        });
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await killing;
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  return { calls, seconds, perInstance: [], killedAt };
}

/** How many Account Server requests each instance logged. */
function countCalls(instances: Instance[]): number[] {
  return instances.map((i) => i.log.filter((line) => line.includes("[as-api] GET")).length);
}

/** Runs a session against `count` instances behind nginx; `kill` kills the second halfway. */
async function scenario(stub: StubServer, nginx: string, count: number, kill: boolean) {
  const listen = freePort();
  const host = `127.0.0.1:${listen}`;
  const instances: Instance[] = [];
  for (let i = 0; i < count; i++) instances.push(await startInstance(stub, freePort(), host));
  const proxy = await startNginx(nginx, listen, instances.map((i) => i.port));
  try {
    const victim = instances[1];
    const run = await session(
      `http://${host}/mcp`,
      stub.tokens.alice,
      kill && victim
        ? async () => {
          victim.child.kill("SIGKILL");
          await victim.child.status;
        }
        : undefined,
    );
    // Let the instances' last log lines arrive.
    await new Promise((resolve) => setTimeout(resolve, 200));
    run.perInstance = countCalls(instances);
    return run;
  } finally {
    await proxy.stop();
    for (const instance of instances) {
      try {
        instance.child.kill("SIGTERM");
      } catch {
        // Already killed.
      }
      await instance.child.status;
      await instance.done;
    }
  }
}

/** What the kill run shows: failures, and whether every one was in flight at the kill. */
function judge(run: Run): { failed: number; inFlight: number; failedAfter: number } {
  const at = run.killedAt ?? Infinity;
  return {
    failed: run.calls.filter((c) => !c.ok).length,
    inFlight: run.calls.filter((c) => c.startedAt <= at && c.endedAt >= at).length,
    failedAfter: run.calls.filter((c) => !c.ok && c.startedAt > at).length,
  };
}

function section(one: Run, three: Run, killed: Run, nginxVersion: string): string {
  const rate = (run: Run) => (run.calls.length / run.seconds).toFixed(0);
  const spread = (run: Run) => run.perInstance.join(" / ");
  const k = judge(killed);
  return `<!-- scale:start -->

Measured on ${
    new Date().toISOString().slice(0, 10)
  }: ${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, ${nginxVersion}. One MCP client session, ${CALLS} \`get_account\` calls, ${CONCURRENCY} at a time, through nginx (deploy/nginx.conf, round-robin) to instances in stateless mode; the stub Account Server runs in the client's process.

| Instances | Killed midway | calls/s | failed | in flight (on any instance) at the kill | failed after the kill | calls per instance (from their logs) |
| --- | --- | --- | --- | --- | --- | --- |
| 1 | no | ${rate(one)} | ${judge(one).failed} | – | – | ${spread(one)} |
| 3 | no | ${rate(three)} | ${judge(three).failed} | – | – | ${spread(three)} |
| 3 | the 2nd, at call ${CALLS / 2} (Account Server answers delayed ${KILL_RUN_DELAY_MS} ms) | ${
    rate(killed)
  } | ${k.failed} | ${k.inFlight} | ${k.failedAfter} | ${spread(killed)} |

<!-- scale:end -->`;
}

function writeSection(text: string): void {
  const path = `${ROOT}BENCHMARKS.md`;
  const current = Deno.readTextFileSync(path);
  const marked = /<!-- scale:start -->[\s\S]*<!-- scale:end -->/;
  const next = marked.test(current)
    ? current.replace(marked, text)
    : `${current.trimEnd()}\n\n## Scale-out (\`deno task scale\`)\n\n${text}\n`;
  Deno.writeTextFileSync(path, next);
}

async function main(): Promise<number> {
  let nginx: string;
  try {
    nginx = await findNginx();
  } catch (error) {
    console.error(`scale: cannot run: ${(error as Error).message}`);
    return 1;
  }
  const version = new TextDecoder().decode(
    (await new Deno.Command(nginx, { args: ["-v"] }).output()).stderr,
  ).trim().replace("nginx version: ", "");
  const stub = await startStub();
  try {
    const one = await scenario(stub, nginx, 1, false);
    console.error(`scale: 1 instance: ${(CALLS / one.seconds).toFixed(0)} calls/s`);
    const three = await scenario(stub, nginx, 3, false);
    console.error(`scale: 3 instances: ${(CALLS / three.seconds).toFixed(0)} calls/s`);
    stub.inject("get_account", { delayMs: KILL_RUN_DELAY_MS });
    const killed = await scenario(stub, nginx, 3, true);
    stub.clearFaults();
    const text = section(one, three, killed, version);
    console.log(text);
    writeSection(text);
    const k = judge(killed);
    const problems = [
      judge(one).failed + judge(three).failed > 0 ? "calls failed with no instance killed" : "",
      three.perInstance.some((n) => n === 0) ? "an instance received no calls" : "",
      k.failedAfter > 0 ? `${k.failedAfter} calls started after the kill failed` : "",
      k.failed > k.inFlight ? "more calls failed than were in flight at the kill" : "",
    ].filter(Boolean);
    for (const problem of problems) console.error(`scale: FAILED: ${problem}`);
    return problems.length ? 1 : 0;
  } finally {
    await stub.shutdown();
  }
}

if (import.meta.main) Deno.exit(await main());
