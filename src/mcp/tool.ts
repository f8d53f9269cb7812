/**
 * What a tool is to the server: a name, what the model reads about it, the shape of its
 * parameters, and a `prepare` step that checks the arguments once and returns the work to run.
 * Every tool, from the operation table or not, goes through the same `tools/call` path.
 *
 * @module
 */
import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import { checkParams, type Kind, type Toolset } from "../api/mod.ts";

/** What a tool's work runs with, besides its checked arguments. */
export interface CallContext {
  /** Aborted when the request is cancelled or the server shuts down. */
  signal: AbortSignal;
  /** Seconds the caller gave the call (`timeout_s`), if any. */
  timeoutS?: number;
  /** The caller's own bearer token (HTTP), used instead of the operator's credentials. */
  callerToken?: string;
  /**
   * Who the caller is (HTTP): their verified user (`caller:<id>`), else their token's hash; the
   * same whichever of their tokens a call carries, when callers are verified.
   */
  callerId?: string;
  /**
   * Asks the user to confirm `message`; true to go ahead (true when the client cannot ask).
   * The question is withdrawn, and the answer false, once `signal` (if given) aborts.
   */
  confirm(message: string, signal?: AbortSignal): Promise<boolean>;
}

/** The work of one call whose arguments passed their check. */
export type Prepared = (context: CallContext) => Promise<CallToolResult>;

/** One tool the server can offer. */
export interface Tool {
  readonly name: string;
  readonly toolset: Toolset | "code";
  readonly kind: Kind;
  readonly title: string;
  /** For a model that has never heard of Squonk2. */
  readonly description: string;
  /** The parameters, each with `.describe()`; `timeout_s` is added by the server. */
  readonly params: z.ZodRawShape;
  readonly annotations: ToolAnnotations;
  /**
   * Checks the arguments (without `timeout_s`): the work to run, or the reason they are refused.
   * Nothing is sent before this has passed.
   */
  prepare(args: Record<string, unknown>): Prepared | { error: string };
}

/** The annotations of a tool that calls the Account Server: a function of its kind. */
export function annotationsFor(kind: Kind, title: string): ToolAnnotations {
  return {
    title,
    readOnlyHint: kind === "read",
    destructiveHint: kind === "delete",
    idempotentHint: kind !== "create",
    openWorldHint: true,
  };
}

/** A tool that is not a table row: its parameters checked as strictly as an operation's. */
export interface LocalToolDefinition extends Omit<Tool, "prepare"> {
  /** The work, given the checked parameters. */
  run(params: Record<string, unknown>, context: CallContext): Promise<CallToolResult>;
}

/** A tool from its definition, with the same strict check of arguments as the table's tools. */
export function localTool(definition: LocalToolDefinition): Tool {
  const { run, ...tool } = definition;
  return {
    ...tool,
    prepare(args) {
      const checked = checkParams(tool.params, args, { label: tool.name, also: ["timeout_s"] });
      if ("error" in checked) {
        return { error: `Cannot ${tool.name}: invalid input: ${checked.error}` };
      }
      return (context) => run(checked.params, context);
    },
  };
}
