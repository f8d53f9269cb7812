import assert from "node:assert/strict";
import { ENVIRONMENT } from "../src/config.ts";
import { normalize, render } from "../scripts/docs.ts";

const root = new URL("..", import.meta.url);

Deno.test("the README's tool and environment tables match the code (run deno task docs)", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  assert.equal(normalize(render(readme)), normalize(readme));
});

Deno.test(".env.example names every environment variable the server reads", async () => {
  const example = await Deno.readTextFile(new URL(".env.example", root));
  for (const name of Object.keys(ENVIRONMENT)) {
    assert.match(example, new RegExp(`^#? ?${name}=`, "m"), name);
  }
});

Deno.test("start, demo and the compiled binary may read exactly the variables read", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  for (const task of ["start", "demo", "compile"]) {
    const allowed = /--allow-env=(\S+)/.exec(config.tasks[task])?.[1]?.split(",");
    assert.deepEqual(allowed?.sort(), Object.keys(ENVIRONMENT).sort(), task);
  }
});
