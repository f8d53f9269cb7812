import assert from "node:assert/strict";
import { envExample, normalize, render, renderTasks } from "../scripts/docs.ts";
import { TASKS } from "../bench/_codemode_tasks.ts";
import { startStub } from "../src/stub/mod.ts";
import { hermeticEnv } from "./_spawn.ts";

const root = new URL("..", import.meta.url);

Deno.test("the README's tool, toolset and settings tables match the code (run deno task docs)", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  assert.equal(normalize(render(readme)), normalize(readme));
});

Deno.test(".env.example is the one the settings table makes (run deno task docs)", async () => {
  const example = await Deno.readTextFile(new URL(".env.example", root));
  assert.equal(example, envExample());
  assert.match(example, /^# SQUONK2_KEYCLOAK_USER_PASSWORD=$/m, "a secret is left empty");
  assert.match(
    example,
    /^# Keycloak password of that user \(secret\)\n# SQUONK2_KEYCLOAK_USER_PASSWORD=/m,
  );
  assert.match(example, /`deno task demo` does not/, "the demo reads no .env");
  assert.match(example, /^# SQUONK2_ASAPI_VERIFY_SSL_CERT=yes$/m);
});

Deno.test("every task that starts the server may read exactly the table's variables", async () => {
  const json = await Deno.readTextFile(new URL("deno.json", root));
  assert.equal(json, renderTasks(json), "run deno task docs");
  const tasks: Record<string, string> = JSON.parse(json).tasks;
  for (const task of ["start", "demo", "compile"]) {
    assert.match(tasks[task]!, /--allow-env=SQUONK2_ASAPI_URL,SQUONK2_ASAPI_VERIFY_SSL_CERT,/);
  }
});

/** `program` as `deno fmt` writes it in this project (its line width). */
async function formatted(program: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=ts", "-"],
    cwd: root,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(program));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return new TextDecoder().decode(stdout);
}

Deno.test("the README's code mode programs are the benchmark's, as deno fmt writes them", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const section = readme.split("\n## Code mode")[1]!.split("\n## ")[0]!;
  const shown = [...section.matchAll(/^(\S.*):\n\n```ts\n([\s\S]*?)```$/gm)]
    .map(([, name, program]) => ({ name, program }));
  const bench = await Promise.all(
    TASKS.map(async ({ name, program }) => ({ name, program: await formatted(program) })),
  );
  assert.deepEqual(shown, bench);
});

Deno.test("the README's library example runs as shown, from outside the checkout, against the stub", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const section = readme.split("\n## The client as a library")[1]!.split("\n## ")[0]!;
  const program = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
  const command = /```sh\n(deno run .*) example\.ts\n```/.exec(section)![1]!.split(" ");
  const stub = await startStub();
  const outside = await Deno.makeTempDir();
  try {
    const checkout = new URL(".", root).pathname.replace(/\/$/, "");
    await Deno.writeTextFile(
      `${outside}/example.ts`,
      program.replaceAll("/path/to/squonk2-as-mcp", checkout)
        .replace("http://127.0.0.1:8090/account-server-api", stub.url),
    );
    const args = command.slice(1).map((a) => a.replace("/path/to/squonk2-as-mcp", checkout));
    const output = await new Deno.Command(Deno.execPath(), {
      args: [...args, "example.ts"],
      cwd: outside,
      clearEnv: true,
      env: hermeticEnv(),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(
      text,
      /success: true,\n.*msg: \{ id: "unit-[0-9a-f-]+" \},\n.*http_status_code: 201/,
    );
    const created = stub.requests.find((r) => r.method === "POST");
    assert.equal(created?.authorization, `Bearer ${stub.tokens.alice}`);
  } finally {
    await stub.shutdown();
    await Deno.remove(outside, { recursive: true });
  }
});
