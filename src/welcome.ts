/**
 * What the server tells a person who started it by hand: that it waits for an MCP client and how
 * to connect one, the demo's tokens over HTTP, and one clear line when its port is taken.
 *
 * @module
 */

/** Said on stderr when stdin is a terminal: nobody is meant to type MCP messages. */
export function stdioWelcome(task: "start" | "demo"): string {
  return [
    "squonk2-as-mcp is an MCP server: it now waits for an MCP client on stdin and stdout, not for",
    "typing. Connect a client instead (press Ctrl+C to stop this one):",
    `  MCP Inspector:  npx @modelcontextprotocol/inspector deno task -q ${task}   (in this folder)`,
    "  Claude Desktop: deno task desktop-config prints the entry for claude_desktop_config.json,",
    "                  or deno task bundle builds dist/squonk2-as-mcp.mcpb to install with a click",
    `  Over HTTP:      deno task ${task} --transport http`,
  ].join("\n");
}

const DEMO_USERS: Readonly<Record<string, string>> = {
  admin: "an Account Server admin",
  alice: 'a member of "Informatics Matters"',
  bob: "in no Organisation",
};

/** Said when the HTTP demo starts: the stub's users and the bearer tokens to call it with. */
export function demoTokensHelp(url: string, tokens: Record<string, string>): string {
  const lines = Object.entries(tokens).map(([user, token]) =>
    `  ${user.padEnd(6)} ${token.padEnd(24)} (${DEMO_USERS[user] ?? "a demo user"})`
  );
  return [
    `Demo: send "Authorization: Bearer <token>" to ${url} with one of the stub's tokens`,
    "(stub only, not secrets); each caller acts as that user:",
    ...lines,
    "MCP Inspector: Streamable HTTP, this URL, the token under Authentication; a browser",
    "connecting directly needs its origin allowed, e.g. --allowed-origins http://localhost:6274",
  ].join("\n");
}

/** One line for a listening address that is taken, or undefined for any other error. */
export function portInUse(error: unknown, host: string, port: number): string | undefined {
  if (!(error instanceof Deno.errors.AddrInUse)) return undefined;
  return `Cannot listen on ${host}:${port}: the port is in use (choose another with --port N)`;
}
