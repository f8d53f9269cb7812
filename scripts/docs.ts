/**
 * Generates what the docs repeat from the code: the README's tables (tools, toolsets, settings)
 * from the operation table and the settings table, and `.env.example` from the settings table.
 * `deno task docs` rewrites them in place; a test fails when they are stale.
 *
 * @module
 */
import { OPERATIONS, TOOLSETS } from "../src/api/mod.ts";
import { SETTINGS } from "../src/config.ts";
import { ALL_TOOLS } from "../src/mcp/mod.ts";
import type { Setting } from "../src/settings.ts";

/** The markers around each generated section. */
export const SECTIONS = {
  tools: toolsTable,
  toolsets: toolsetsTable,
  env: environmentTable,
} as const;

const ROWS: readonly Setting[] = Object.values(SETTINGS as Record<string, Setting>);

/** The Markdown table of the toolsets and the tools each holds. */
export function toolsetsTable(): string {
  const rows = [...TOOLSETS, "code"].map((set) => {
    const names = [...ALL_TOOLS].filter(([, t]) => t.toolset === set).map(([n]) => `\`${n}\``);
    return `| \`${set}\` | ${names.length} | ${names.join(", ")} |`;
  });
  return ["| Toolset | Tools | Names |", "| --- | --- | --- |", ...rows].join("\n");
}

/** The Markdown table of every tool. */
export function toolsTable(): string {
  const rows = OPERATIONS.map((o) => `| \`${o.name}\` | ${o.kind} | ${o.description} |`);
  rows.push(
    "| `get_api_url` | local | The Account Server URL in use and whether TLS is verified; sends no request. |",
    "| `read_event_stream` | read | Reads the caller's event stream from a cursor (an ordinal, a time, or only new events), within bounds. |",
    "| `run_program` | local | Runs a short program over the offered tools in a sandbox (code mode, off by default). |",
  );
  return ["| Tool | Kind | What it does |", "| --- | --- | --- |", ...rows].join("\n");
}

/** The Markdown table of every setting that has an environment variable. */
export function environmentTable(): string {
  const rows = ROWS.filter((s) => s.env).map((s) => {
    const arg = s.arg ? ` ${s.arg.replaceAll("|", "\\|")}` : "";
    const flag = s.flag ? `\`--${s.flag}${arg}\`` : "";
    const fallback = s.default !== undefined ? `\`${s.default}\`` : "";
    return `| \`${s.env}\` | ${flag} | ${fallback} | ${s.help}${s.secret ? " (secret)" : ""} |`;
  });
  return ["| Variable | Flag | Default | Meaning |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

/** `.env.example`: every variable with its meaning, commented out; secrets left empty. */
export function envExample(): string {
  const head = [
    "# Generated from the settings table (src/config.ts) by `deno task docs`: edit that, not this.",
    "# Copy to .env (git ignores it): `deno task start` loads it with Deno's --env-file;",
    "# `deno task demo` does not (it always serves the embedded stub; pass flags instead).",
    "# Variables already set in the environment win over this file.",
  ];
  const blocks = ROWS.filter((s) => s.env).map((s) => {
    const value = s.secret ? "" : s.example ?? s.default ?? "";
    const fallback = s.default !== undefined ? ` (default ${s.default})` : "";
    return `# ${s.help}${s.secret ? " (secret)" : ""}${fallback}\n# ${s.env}=${value}`;
  });
  return `${head.join("\n")}\n\n${blocks.join("\n\n")}\n`;
}

/** `text` with each generated section replaced by its current content. */
export function render(text: string): string {
  let out = text;
  for (const [name, make] of Object.entries(SECTIONS)) {
    const start = `<!-- ${name}:start -->`;
    const end = `<!-- ${name}:end -->`;
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md has no ${start} ... ${end} section`);
    out = `${out.slice(0, from + start.length)}\n${make()}\n${out.slice(to)}`;
  }
  return out;
}

/**
 * `text` with Markdown tables reduced to their cells and blank lines dropped, so a table that
 * `deno fmt` aligned compares equal to the one generated.
 */
export function normalize(text: string): string {
  return text.split("\n")
    .filter((line) => line.trim())
    .map((line) =>
      line.startsWith("|")
        ? line.split("|").map((cell) => cell.trim().replace(/^-{3,}$/, "---")).join("|")
        : line
    )
    .join("\n");
}

/** The `--allow-env` list every task that starts the server must grant: the table's variables. */
export function allowEnv(): string {
  return `--allow-env=${ROWS.flatMap((s) => (s.env ? [s.env] : [])).join(",")}`;
}

/** `deno.json` with every task's `--allow-env=SQUONK2_…` list set to the table's variables. */
export function renderTasks(json: string): string {
  return json.replace(/--allow-env=SQUONK2_[A-Z0-9_,]+/g, allowEnv());
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url);
  const readme = new URL("README.md", root);
  await Deno.writeTextFile(readme, render(await Deno.readTextFile(readme)));
  await Deno.writeTextFile(new URL(".env.example", root), envExample());
  const denoJson = new URL("deno.json", root);
  await Deno.writeTextFile(denoJson, renderTasks(await Deno.readTextFile(denoJson)));
}
