/**
 * Generates the README's tables (tools and environment) from the operation table and the
 * configuration, so the docs cannot drift from the code. `deno task docs` rewrites them in place;
 * a test fails when they are stale.
 *
 * @module
 */
import { OPERATIONS, TOOLSETS } from "../src/api/mod.ts";
import { ENVIRONMENT } from "../src/config.ts";
import { ALL_TOOLS } from "../src/mcp/mod.ts";

/** The markers around each generated section. */
export const SECTIONS = {
  tools: toolsTable,
  toolsets: toolsetsTable,
  env: environmentTable,
} as const;

/** The Markdown table of the toolsets and the tools each holds. */
export function toolsetsTable(): string {
  const rows = TOOLSETS.map((set) => {
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
  );
  return ["| Tool | Kind | What it does |", "| --- | --- | --- |", ...rows].join("\n");
}

/** The Markdown table of every environment variable. */
export function environmentTable(): string {
  const rows = Object.entries(ENVIRONMENT).map(([name, meaning]) => `| \`${name}\` | ${meaning} |`);
  return ["| Variable | Meaning |", "| --- | --- |", ...rows].join("\n");
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

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  await Deno.writeTextFile(path, render(await Deno.readTextFile(path)));
}
