/**
 * The one folder `content_file` may read from. With no folder configured, uploads are refused; a
 * path that leads outside it (`..`, an absolute path elsewhere, a symbolic link pointing out) is
 * refused before anything is sent.
 *
 * @module
 */
import { isAbsolute, join, sep } from "node:path";

/** The outcome of resolving an upload path: the real path to read, or why it is refused. */
export type Upload = { path: string } | { error: string };

/** Checks the upload folder at start; returns its real path or throws with the reason. */
export function checkFileRoot(root: string): string {
  let real: string;
  try {
    real = Deno.realPathSync(root);
  } catch (error) {
    throw new Error(`SQUONK2_MCP_FILE_ROOT "${root}" cannot be used: ${(error as Error).message}`);
  }
  if (!Deno.statSync(real).isDirectory) {
    throw new Error(`SQUONK2_MCP_FILE_ROOT "${root}" is not a directory`);
  }
  return real;
}

/** Resolves `path` (relative to the root, or absolute inside it) to a real file inside `root`. */
export async function resolveUpload(root: string | undefined, path: string): Promise<Upload> {
  if (!root) {
    return {
      error: "file uploads are disabled: the operator has not set SQUONK2_MCP_FILE_ROOT; " +
        "send the content as content_string instead",
    };
  }
  const candidate = isAbsolute(path) ? path : join(root, path);
  let real: string;
  try {
    real = await Deno.realPath(candidate);
  } catch {
    return { error: `"${path}" does not exist in the upload folder` };
  }
  if (real !== root && !real.startsWith(root.endsWith(sep) ? root : root + sep)) {
    return { error: `"${path}" is outside the upload folder` };
  }
  const info = await Deno.stat(real);
  if (!info.isFile) return { error: `"${path}" is not a file` };
  return { path: real };
}
