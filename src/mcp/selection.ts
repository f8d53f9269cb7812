/**
 * Which tools a server offers: toolsets, single tools in or out, and read-only mode, all checked
 * against the operation table so a misspelt name stops the server instead of being ignored.
 *
 * @module
 */
import { type Kind, nearestName, OPERATIONS, type Toolset, TOOLSETS } from "../api/mod.ts";

/** The toolsets of tools that are not operations: `code` holds `run_program`. */
export type LocalToolset = Toolset | "code";

/**
 * A tool that is not a row of the operation table. `run_program` counts as a read: it can do only
 * what the offered operations do, so read-only mode keeps it and takes the writes from `as`.
 */
export const LOCAL_TOOLS: Readonly<Record<string, { toolset: LocalToolset; kind: Kind }>> = {
  get_api_url: { toolset: "server", kind: "read" },
  read_event_stream: { toolset: "event_streams", kind: "read" },
  run_program: { toolset: "code", kind: "read" },
};

/** Tools offered only when asked for by name, toolset or code mode: never by default or "all". */
const OPT_IN: ReadonlySet<string> = new Set(["run_program"]);

/** Every tool the server can offer, with its toolset and kind. */
export const ALL_TOOLS: ReadonlyMap<string, { toolset: LocalToolset; kind: Kind }> = new Map([
  ...OPERATIONS.map((o) => [o.name, { toolset: o.toolset, kind: o.kind }] as const),
  ...Object.entries(LOCAL_TOOLS),
]);

/** What the operator asked for. */
export interface ToolSelection {
  /** Toolset names, or "all". Left out: all, unless `tools` is given. */
  toolsets?: string[];
  /** Single tools added to the toolsets' tools. */
  tools?: string[];
  /** Single tools removed. */
  excludeTools?: string[];
  /** Offer only tools whose kind is `read` (wins over everything). */
  readOnly?: boolean;
  /** Offer `run_program` (SQUONK2_MCP_CODE_MODE=yes). */
  codeMode?: boolean;
}

/** A name that is not a toolset or tool; the message is shown as is. */
export class SelectionError extends Error {}

/** Refuses any of `names` not `known`, suggesting the nearest known name where one is close. */
function checkNames(what: string, names: string[], known: Iterable<string>): void {
  const valid = [...known];
  const unknown = names.filter((n) => !valid.includes(n));
  if (!unknown.length) return;
  const near = unknown.map((n) => nearestName(n, valid));
  const named = unknown.map((n, i) => `"${n}"${near[i] ? ` (did you mean ${near[i]}?)` : ""}`);
  const list = near.every(Boolean) ? "" : `: choose from ${valid.join(", ")}`;
  throw new SelectionError(`Unknown ${what} ${named.join(", ")}${list}`);
}

/** The names of the tools to offer, in table order. */
export function selectTools(selection: ToolSelection = {}): string[] {
  const toolsets = selection.toolsets ?? [];
  const tools = selection.tools ?? [];
  const excluded = selection.excludeTools ?? [];
  checkNames("toolset", toolsets, [...TOOLSETS, "code", "all"]);
  checkNames("tool", [...tools, ...excluded], ALL_TOOLS.keys());
  const everything = toolsets.includes("all") ||
    (selection.toolsets === undefined && selection.tools === undefined);
  return [...ALL_TOOLS].filter(([name, tool]) =>
    ((everything && !OPT_IN.has(name)) || toolsets.includes(tool.toolset) ||
      tools.includes(name) || (selection.codeMode === true && name === "run_program")) &&
    !excluded.includes(name) &&
    (!selection.readOnly || tool.kind === "read")
  ).map(([name]) => name);
}
