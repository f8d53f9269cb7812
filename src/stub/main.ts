/**
 * `deno task stub`: runs the stub Account Server with its sample data until interrupted, and
 * prints its URL and the demo users' tokens.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { demoUserLines, portInUse } from "../welcome.ts";
import { startStub, type StubServer } from "./mod.ts";

const USAGE = `Usage: deno task stub [--port N] [--hostname H]

Runs a stub Squonk2 Account Server with sample data (default http://127.0.0.1:8090).`;

function main(): Promise<void> | void {
  let values: { port?: string; hostname?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        port: { type: "string", default: "8090" },
        hostname: { type: "string", default: "127.0.0.1" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (values.help) return console.log(USAGE);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`Invalid --port "${values.port}": must be an integer from 0 to 65535`);
    Deno.exit(2);
  }
  return run(port, values.hostname!);
}

async function run(port: number, hostname: string): Promise<void> {
  let stub: StubServer;
  try {
    stub = await startStub({ port, hostname, demoData: true });
  } catch (error) {
    const taken = portInUse(error, hostname, port);
    if (!taken) throw error;
    console.error(taken);
    Deno.exit(1);
  }
  console.log(`Stub Account Server listening at ${stub.url}

Demo users and their bearer tokens (stub only, not secrets):
${demoUserLines(stub.tokens).join("\n")}

Keycloak-compatible token endpoint: ${stub.keycloak.url}/realms/${stub.keycloak.realm}/protocol/openid-connect/token
  client "${stub.keycloak.clientId}", users' passwords "<user>-password"
Sign-in (OAuth, PKCE, dynamic client registration; signs in alice without a form):
  ${stub.keycloak.url}/realms/${stub.keycloak.realm}/.well-known/openid-configuration

Try: curl -H "Authorization: Bearer ${stub.tokens.alice}" ${stub.url}/user/account
Press Ctrl+C to stop.`);
  Deno.addSignalListener("SIGINT", () => stub.shutdown().then(() => Deno.exit(0)));
}

if (import.meta.main) await main();
