/**
 * The `run_program` tool: its description (with the typed API of `as`), its parameters, its
 * annotations, and the gate that sends each `as.<op>()` through the tool layer's own steps.
 *
 * @module
 */
import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { findOperation } from "../api/mod.ts";
import { toolResult } from "../mcp/result.ts";
import { LOCAL_TOOLS, selectTools } from "../mcp/selection.ts";
import { type CallContext, localTool, type Tool } from "../mcp/tool.ts";
import { declarationOf } from "./declaration.ts";
import {
  DEFAULT_LIMITS,
  type Gate,
  type GateResult,
  MAX_PROGRAM_BYTES,
  runProgram,
  type SandboxLimits,
} from "./sandbox.ts";

/** The name of the tool. */
export const RUN_PROGRAM = "run_program";

/** The parameters of `run_program`, besides `timeout_s` (here: seconds the program may run). */
export const RUN_PROGRAM_PARAMS: z.ZodRawShape = {
  program: z.string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .max(MAX_PROGRAM_BYTES, { error: `must be at most ${MAX_PROGRAM_BYTES} characters` })
    .describe(
      "TypeScript or JavaScript: the body of an async function of `as`; `return` a JSON value",
    ),
};

/** The description of `run_program`, ending with the declaration of `as` for the offered tools. */
export function runProgramDescription(operations: Iterable<string>): string {
  return `Runs a short TypeScript or JavaScript program against the Account Server in one call, so a task of many steps passes only its answer through your context. The program is the body of an async function: it calls the tools as methods of \`as\` (same names, parameters and results; each resolves to { success, msg, http_status_code }), may console.log, and returns a JSON value. No imports, files, network or environment. Limits: timeout_s (default ${DEFAULT_LIMITS.timeoutS}, here the program's run time), ${DEFAULT_LIMITS.maxCalls} calls, ${DEFAULT_LIMITS.maxOutputBytes} bytes of log and value, ${DEFAULT_LIMITS.memoryMb} MiB. Deletes still ask the user. Returns { value, log, calls, time_ms }, or { error, log, calls, time_ms }.
${declarationOf(operations)}`;
}

/** The annotations of `run_program`: as safe as the most dangerous tool it can call. */
export function runProgramAnnotations(operations: Iterable<string>): ToolAnnotations {
  const kinds = new Set([...operations].map((n) => findOperation(n)?.kind));
  return {
    title: "Run a program over the tools",
    readOnlyHint: !kinds.has("create") && !kinds.has("update") && !kinds.has("delete"),
    destructiveHint: kinds.has("delete"),
    idempotentHint: false,
    openWorldHint: true,
  };
}

/** What a program's `as` call is sent through: the server's own tools/call. */
export type Dispatch = (
  name: string,
  args: unknown,
  context: Omit<CallContext, "timeoutS">,
) => Promise<CallToolResult>;

/**
 * The gate of a run's `as` calls: the server's tools/call path with the run_program call's own
 * token and confirmation, and the run's signal.
 */
export function dispatchGate(dispatch: Dispatch, context: CallContext): Gate {
  return async (name, args, signal) => {
    const result = await dispatch(name, args, {
      signal,
      callerToken: context.callerToken,
      callerId: context.callerId,
      // A run that ends (its program threw, timed out) withdraws the questions it left open.
      confirm: (message) => context.confirm(message, signal),
    });
    return result.structuredContent as unknown as GateResult;
  };
}

/**
 * The key of a call's caller for the per-caller cap on running programs: who the HTTP layer says
 * they are (their verified user, so all their tokens share one share), else their token's SHA-256
 * (never the token itself), or "" for calls with the operator's credentials (stdio has one caller).
 */
export async function callerKey(
  context: Pick<CallContext, "callerToken" | "callerId">,
): Promise<string> {
  if (context.callerId !== undefined) return context.callerId;
  if (context.callerToken === undefined) return "";
  const bytes = new TextEncoder().encode(context.callerToken);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return "token:" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The server's tools other than operations and run_program: called by name on `as`, they are named as tools. */
function otherTools(selected: readonly string[]): string[] {
  return selected.filter((name) => LOCAL_TOOLS[name] && name !== RUN_PROGRAM);
}

/**
 * The `run_program` tool over the offered `operations`, each `as` call sent through `dispatch`;
 * `tools` is the server's selection (default: `selectTools()`).
 */
export function programTool(
  operations: readonly string[],
  dispatch: Dispatch,
  options: {
    maxResultBytes?: number;
    limits?: Partial<SandboxLimits>;
    tools?: readonly string[];
  } = {},
): Tool {
  const tools = otherTools(options.tools ?? selectTools());
  return localTool({
    name: RUN_PROGRAM,
    toolset: "code",
    kind: "read",
    title: "Run a program over the tools",
    description: runProgramDescription(operations),
    params: RUN_PROGRAM_PARAMS,
    annotations: runProgramAnnotations(operations),
    async run(params, context) {
      const rv = await runProgram(String(params.program), {
        gate: dispatchGate(dispatch, context),
        operations,
        tools,
        signal: context.signal,
        caller: await callerKey(context),
        limits: { ...options.limits, ...(context.timeoutS ? { timeoutS: context.timeoutS } : {}) },
      });
      return toolResult(rv, { maxBytes: options.maxResultBytes });
    },
  });
}
