/**
 * `deno bench bench/limit_bench.ts`: the cost of cutting a large tool result, for answers of
 * several shapes at 1x, 2x and 4x their size. Linear cost shows as times that double with the
 * size (an answer of 10,000 small lists took 84 s to cut before the cut was made linear).
 *
 * @module
 */
import { limitMsg } from "../src/mcp/limit.ts";

type Json = Record<string, unknown>;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

const SHAPES: Record<string, (n: number) => Json> = {
  "small lists": (n) => Object.fromEntries(range(n).map((i) => [`a${i}`, [1]])),
  "one long list": (n) => ({
    count: n,
    assets: range(n).map((i) => ({ id: `asset-${i}`, name: `化学-${i}`, content: `value ${i}` })),
  }),
  "keys, no lists": (n) => Object.fromEntries(range(n).map((i) => [`key-${i}`, `value ${i}`])),
};

for (const [shape, make] of Object.entries(SHAPES)) {
  for (const scale of [1, 2, 4]) {
    const msg = make(10_000 * scale);
    const json = JSON.stringify(msg);
    Deno.bench({
      name: `${shape}: ${10_000 * scale} (${(json.length / 1024).toFixed(0)} KiB)`,
      group: shape,
      baseline: scale === 1,
      warmup: 20,
      n: 60,
      fn: () => {
        limitMsg(msg, 65_536, { json });
      },
    });
  }
}
