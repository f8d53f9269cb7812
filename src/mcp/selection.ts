/**
 * Which tools a server offers: toolsets, single tools in or out, and read-only mode, all checked
 * against the operation table so a misspelt name stops the server instead of being ignored.
 *
 * @module
 */
import { type Kind, OPERATIONS, type Toolset, TOOLSETS } from "../api/mod.ts";

/** A tool that answers locally, without calling the Account Server. */
export const LOCAL_TOOLS: Readonly<Record<string, { toolset: Toolset; kind: Kind }>> = {
  get_api_url: { toolset: "server", kind: "read" },
};

/** Every tool the server can offer, with its toolset and kind. */
export const ALL_TOOLS: ReadonlyMap<string, { toolset: Toolset; kind: Kind }> = new Map([
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
}

/** A name that is not a toolset or tool; the message is shown as is. */
export class SelectionError extends Error {}

function checkNames(what: string, names: string[], known: Iterable<string>): void {
  const valid = new Set(known);
  const unknown = names.filter((n) => !valid.has(n));
  if (unknown.length) {
    throw new SelectionError(
      `Unknown ${what} ${unknown.map((n) => `"${n}"`).join(", ")}: choose from ${
        [...valid].join(", ")
      }`,
    );
  }
}

/** The names of the tools to offer, in table order. */
export function selectTools(selection: ToolSelection = {}): string[] {
  const toolsets = selection.toolsets ?? [];
  const tools = selection.tools ?? [];
  const excluded = selection.excludeTools ?? [];
  checkNames("toolset", toolsets, [...TOOLSETS, "all"]);
  checkNames("tool", [...tools, ...excluded], ALL_TOOLS.keys());
  const everything = toolsets.includes("all") ||
    (selection.toolsets === undefined && selection.tools === undefined);
  return [...ALL_TOOLS].filter(([name, tool]) =>
    (everything || toolsets.includes(tool.toolset) || tools.includes(name)) &&
    !excluded.includes(name) &&
    (!selection.readOnly || tool.kind === "read")
  ).map(([name]) => name);
}
