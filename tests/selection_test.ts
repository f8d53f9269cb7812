/**
 * Which tools a server offers, as the function `selectTools` decides it: toolsets, single tools,
 * exclusions, read-only mode, code mode and the tools that are not operations, and misspelt names
 * refused with the nearest name. Counts come from the operation table.
 */
import assert from "node:assert/strict";
import { OPERATIONS, TOOLSETS } from "../src/api/mod.ts";
import {
  ALL_TOOLS,
  LOCAL_TOOLS,
  SelectionError,
  selectTools,
  type ToolSelection,
} from "../src/mcp/selection.ts";

/** The operations' names, in table order. */
const OPERATION_NAMES = OPERATIONS.map((o) => o.name);

/** The names of the operations of `toolset`, in table order. */
function toolsetOps(toolset: string): string[] {
  return OPERATIONS.filter((o) => o.toolset === toolset).map((o) => o.name);
}

/** The message `selectTools(selection)` refuses with, which must be a SelectionError. */
function refusal(selection: ToolSelection): string {
  try {
    selectTools(selection);
  } catch (error) {
    assert.ok(error instanceof SelectionError, `not a SelectionError: ${error}`);
    return error.message;
  }
  return assert.fail(`accepted ${JSON.stringify(selection)}`);
}

Deno.test("by default every operation is offered, then get_api_url and read_event_stream", () => {
  assert.deepEqual(selectTools(), [...OPERATION_NAMES, "get_api_url", "read_event_stream"]);
  assert.equal(selectTools().length, OPERATIONS.length + 2);
});

Deno.test("the toolset all is the default, and run_program is in neither", () => {
  assert.deepEqual(selectTools({ toolsets: ["all"] }), selectTools());
  assert.equal(selectTools().includes("run_program"), false);
});

Deno.test("a toolset offers its operations and its tools that are not operations", () => {
  assert.deepEqual(selectTools({ toolsets: ["merchants"] }), ["get_merchants", "get_merchant"]);
  assert.deepEqual(selectTools({ toolsets: ["server"] }), ["ping", "get_version", "get_api_url"]);
  assert.deepEqual(selectTools({ toolsets: ["event_streams"] }), [
    "get_event_stream_version",
    "get_event_stream",
    "create_event_stream",
    "delete_event_stream",
    "read_event_stream",
  ]);
  const units = selectTools({ toolsets: ["units"] });
  assert.deepEqual(units, toolsetOps("units"));
  for (const name of ["get_unit", "create_unit", "delete_unit", "get_personal_unit"]) {
    assert.ok(units.includes(name), name);
  }
  assert.equal(units.includes("get_product"), false);
});

Deno.test("several toolsets offer their tools together, in table order", () => {
  const chosen = selectTools({ toolsets: ["units", "merchants"] });
  assert.deepEqual(
    chosen,
    OPERATIONS.filter((o) => o.toolset === "units" || o.toolset === "merchants").map((o) => o.name),
  );
  assert.equal(chosen.length, toolsetOps("units").length + 2);
});

Deno.test("single tools alone offer only those tools, once each, in table order", () => {
  assert.deepEqual(selectTools({ tools: ["get_unit", "ping", "get_unit"] }), ["ping", "get_unit"]);
  assert.deepEqual(selectTools({ tools: ["get_api_url"] }), ["get_api_url"]);
});

Deno.test("single tools add to toolsets", () => {
  assert.deepEqual(selectTools({ toolsets: ["merchants"], tools: ["get_unit", "ping"] }), [
    "ping",
    "get_merchants",
    "get_merchant",
    "get_unit",
  ]);
});

Deno.test("an excluded tool is removed from the default, a toolset, or the tools named", () => {
  assert.deepEqual(
    selectTools({ excludeTools: ["delete_organisation", "get_api_url"] }),
    [...OPERATION_NAMES.filter((n) => n !== "delete_organisation"), "read_event_stream"],
  );
  assert.deepEqual(
    selectTools({ toolsets: ["merchants"], excludeTools: ["get_merchant"] }),
    ["get_merchants"],
  );
  assert.deepEqual(selectTools({ tools: ["ping", "get_unit"], excludeTools: ["ping"] }), [
    "get_unit",
  ]);
});

Deno.test("read-only offers every read and no create, update or delete", () => {
  const reads = selectTools({ readOnly: true });
  assert.deepEqual(reads, [
    ...OPERATIONS.filter((o) => o.kind === "read").map((o) => o.name),
    "get_api_url",
    "read_event_stream",
  ]);
  for (const write of ["create_unit", "alter_unit", "delete_unit", "attach_asset"]) {
    assert.equal(reads.includes(write), false, write);
  }
  for (const read of ["get_unit", "get_account", "ping"]) assert.ok(reads.includes(read), read);
});

Deno.test("read-only wins over toolsets and tools named one by one", () => {
  assert.deepEqual(
    selectTools({ toolsets: ["merchants"], tools: ["delete_unit"], readOnly: true }),
    ["get_merchants", "get_merchant"],
  );
  assert.deepEqual(selectTools({ toolsets: ["assets"], readOnly: true }), [
    "get_available_assets",
    "get_asset",
  ]);
  assert.deepEqual(selectTools({ tools: ["delete_unit", "create_unit"], readOnly: true }), []);
});

Deno.test("run_program is offered with code mode, the code toolset, or by name", () => {
  assert.deepEqual(selectTools({ codeMode: true }), [...selectTools(), "run_program"]);
  assert.deepEqual(selectTools({ toolsets: ["code"] }), ["run_program"]);
  assert.deepEqual(selectTools({ tools: ["run_program"] }), ["run_program"]);
  assert.deepEqual(selectTools({ tools: ["get_unit"], codeMode: true }), [
    "get_unit",
    "run_program",
  ]);
  assert.deepEqual(selectTools({ toolsets: ["all", "code"] }), [...selectTools(), "run_program"]);
});

Deno.test("run_program stays in read-only mode, which takes the writes it could call", () => {
  const tools = selectTools({ codeMode: true, readOnly: true });
  assert.deepEqual(tools, [...selectTools({ readOnly: true }), "run_program"]);
  assert.equal(tools.includes("create_unit"), false);
});

Deno.test("an excluded run_program is not offered, even in code mode", () => {
  assert.deepEqual(selectTools({ codeMode: true, excludeTools: ["run_program"] }), selectTools());
});

Deno.test("the tools that are not operations have their toolset and kind, and no operation's name", () => {
  assert.deepEqual(LOCAL_TOOLS, {
    get_api_url: { toolset: "server", kind: "read" },
    read_event_stream: { toolset: "event_streams", kind: "read" },
    run_program: { toolset: "code", kind: "read" },
  });
  assert.equal(ALL_TOOLS.size, OPERATIONS.length + 3);
  assert.deepEqual(ALL_TOOLS.get("delete_unit"), { toolset: "units", kind: "delete" });
});

Deno.test("a misspelt toolset is refused with the nearest name", () => {
  assert.equal(refusal({ toolsets: ["unit"] }), 'Unknown toolset "unit" (did you mean units?)');
  assert.equal(refusal({ toolsets: ["Units"] }), 'Unknown toolset "Units" (did you mean units?)');
  assert.equal(
    refusal({ toolsets: ["merchant", "aseets"] }),
    'Unknown toolset "merchant" (did you mean merchants?), "aseets" (did you mean assets?)',
  );
});

Deno.test("a misspelt tool, named or excluded, is refused with the nearest name", () => {
  assert.equal(
    refusal({ tools: ["get_untis"] }),
    'Unknown tool "get_untis" (did you mean get_units?)',
  );
  assert.equal(
    refusal({ excludeTools: ["delete_unti"] }),
    'Unknown tool "delete_unti" (did you mean delete_unit?)',
  );
  assert.equal(
    refusal({ tools: ["run_progam"] }),
    'Unknown tool "run_progam" (did you mean run_program?)',
  );
});

Deno.test("a name with nothing close is refused with the names to choose from", () => {
  assert.equal(
    refusal({ toolsets: ["orgs"] }),
    `Unknown toolset "orgs": choose from ${[...TOOLSETS, "code", "all"].join(", ")}`,
  );
  assert.equal(
    refusal({ excludeTools: ["get_untis", "drop_everything"] }),
    'Unknown tool "get_untis" (did you mean get_units?), "drop_everything": choose from ' +
      [...OPERATION_NAMES, "get_api_url", "read_event_stream", "run_program"].join(", "),
  );
});

Deno.test("a toolset name is not a tool name, nor a tool name a toolset", () => {
  assert.match(refusal({ tools: ["all"] }), /^Unknown tool "all": choose from ping, /);
  assert.equal(
    refusal({ toolsets: ["get_unit"] }),
    `Unknown toolset "get_unit": choose from ${[...TOOLSETS, "code", "all"].join(", ")}`,
  );
});
