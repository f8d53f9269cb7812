/**
 * How tests spawn the server: `deno run` with exactly the permissions of the `start` or `demo`
 * task but without `--env-file`, in an environment holding only what Deno needs. So neither a
 * developer's `.env` in the checkout nor their shell's variables change a test's outcome.
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
