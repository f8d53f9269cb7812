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

/** Who the stub's users are in the demo's data, which `deno task demo` and `stub` serve. */
const DEMO_USERS: Readonly<Record<string, string>> = {
  admin: "Account Server admin: sees everything",
  alice: 'owner of "Informatics Matters" and of Bench Org 1-3',
  bob: "member of Bench Org 1-3, owns no Organisation",
};

/** The demo's users, one line each: name, bearer token and who they are, in aligned columns. */
export function demoUserLines(tokens: Record<string, string>): string[] {
  const width = Math.max(...Object.values(tokens).map((t) => t.length));
  return Object.entries(tokens).map(([user, token]) =>
    `  ${user.padEnd(6)} ${token.padEnd(width)}  (${DEMO_USERS[user] ?? "a demo user"})`
  );
}

/** Said when the HTTP demo starts: the stub's users and the bearer tokens to call it with. */
export function demoTokensHelp(url: string, tokens: Record<string, string>): string {
  return [
    `Demo: send "Authorization: Bearer <token>" to ${url} with one of the stub's tokens`,
    "(stub only, not secrets); each caller acts as that user:",
    ...demoUserLines(tokens),
    "MCP Inspector: Streamable HTTP, this URL, the token under Authentication, connection type",
    "Via Proxy (the default); Direct cannot work, as this server answers no CORS preflight",
  ].join("\n");
}

/** One line for a listening address that is taken, or undefined for any other error. */
export function portInUse(error: unknown, host: string, port: number): string | undefined {
  if (!(error instanceof Deno.errors.AddrInUse)) return undefined;
  return `Cannot listen on ${host}:${port}: the port is in use (choose another with --port N)`;
}
