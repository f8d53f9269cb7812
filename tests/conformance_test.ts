/**
 * The MCP conformance suite (`@modelcontextprotocol/conformance`, run by Deno from the cache that
 * `deno install` fills) against the HTTP server. Its `tools-call-*` scenarios need fixture tools
 * this server does not have, so they are not run and not counted.
 */
import assert from "node:assert/strict";
import { openEndpoint } from "../testing/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** One check of a scenario, as the suite writes it to `checks.json`. */
interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

/** Runs one server scenario against `url`; returns its exit code and every check it made. */
async function conformance(url: string, scenario: string): Promise<[number, Check[]]> {
  const out = await Deno.makeTempDir({ prefix: "conformance-" });
  try {
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `--config=${ROOT}deno.json`,
        "npm:@modelcontextprotocol/conformance",
        "server",
        `--url=${url}`,
        `--scenario=${scenario}`,
        `--output-dir=${out}`,
      ],
      cwd: out,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    const checks: Check[] = [];
    for await (const entry of Deno.readDir(out)) {
      const file = `${out}/${entry.name}/checks.json`;
      checks.push(...JSON.parse(await Deno.readTextFile(file)) as Check[]);
    }
    return [code, checks];
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

for (const scenario of ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]) {
  Deno.test(`the conformance scenario ${scenario} passes against the HTTP server`, async () => {
    // The suite sends no bearer token: the server answers with its own credentials.
    await using http = await openEndpoint({
      allowServerCredentials: true,
      fromStub: (stub) => ({ serverToken: stub.tokens.alice }),
    });
    const [code, checks] = await conformance(http.endpoint.url, scenario);
    assert.ok(checks.length > 0, `${scenario} made no checks`);
    const failed = checks.filter((c) => c.status !== "SUCCESS");
    assert.deepEqual(failed, [], `${scenario}: ${JSON.stringify(failed)}`);
    assert.equal(code, 0);
  });
}
