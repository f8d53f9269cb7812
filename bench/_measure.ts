/**
 * Small measuring helpers for the benchmarks: timing, percentiles, interleaved comparisons, and
 * a raw stdio MCP exchange for cold-start timing.
 *
 * @module
 */
import { initializeRequest } from "../testing/mod.ts";

/** The q-quantile (0..1) of `values`, in their unit. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.ceil(at);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (at - low);
}

/** The median of `values`. */
export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** Times `work` once, in milliseconds. */
export async function time(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/**
 * Runs each contender `perRound` times per round for `rounds` rounds, in a rotating order so
 * drift (JIT, GC, the other core) falls on all alike. Returns each contender's call times (ms).
 */
export async function interleave(
  contenders: Record<string, () => Promise<unknown>>,
  options: { warmup: number; rounds: number; perRound: number },
): Promise<Record<string, number[]>> {
  const names = Object.keys(contenders);
  for (const name of names) {
    for (let i = 0; i < options.warmup; i++) await contenders[name]!();
  }
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < options.rounds; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      for (let i = 0; i < options.perRound; i++) times[name]!.push(await time(contenders[name]!));
    }
  }
  return times;
}

/**
 * Spawns an MCP stdio server and measures the time from spawn to the answer to its first
 * `tools/list`, in milliseconds; returns the number of tools listed too.
 */
export async function coldStart(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ ms: number; tools: number }> {
  const started = performance.now();
  const child = new Deno.Command(command, {
    args,
    env,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = [
    initializeRequest(1, "bench"),
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
  ];
  await writer.write(
    new TextEncoder().encode(lines.map((l) => JSON.stringify(l)).join("\n") + "\n"),
  );
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let tools = 0;
  let ms = NaN;
  while (Number.isNaN(ms)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the server closed stdout before answering tools/list");
    text += value;
    for (const line of text.split("\n").slice(0, -1)) {
      const message = JSON.parse(line);
      if (message.id === 2) {
        ms = performance.now() - started;
        tools = message.result.tools.length;
      }
    }
  }
  await writer.close();
  await reader.cancel();
  await child.status;
  return { ms, tools };
}
