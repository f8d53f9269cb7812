/**
 * A process of its own that keeps swapping a path inside the upload folder for a symbolic link to
 * `target` and back, as someone who can write to the folder could: `file` swaps a regular file,
 * `folder` swaps a folder (which takes an unlink and two renames). Run by the upload tests; it
 * stops when killed.
 *
 * Usage: deno run --allow-read --allow-write tests/_swapper.ts file|folder PATH TARGET
 */
const [kind, path, target] = Deno.args;
if (!path || !target || (kind !== "file" && kind !== "folder")) {
  throw new Error("usage: _swapper.ts file|folder PATH TARGET");
}
for (let i = 0;; i++) {
  if (kind === "file") {
    Deno.writeTextFileSync(`${path}.file`, "harmless");
    Deno.renameSync(`${path}.file`, path);
    Deno.symlinkSync(target, `${path}.link`);
    Deno.renameSync(`${path}.link`, path);
  } else {
    Deno.renameSync(path, `${path}.real`);
    Deno.symlinkSync(target, path);
    Deno.removeSync(path);
    Deno.renameSync(`${path}.real`, path);
  }
  if (i % 64 === 0) await new Promise((r) => setTimeout(r, 0));
}
