/**
 * The one folder `content_file` may read from. With no folder configured, uploads are refused; a
 * path that leads outside it (`..`, an absolute path elsewhere, a symbolic link pointing out) is
 * refused before anything is sent.
 *
 * The file is opened first (without blocking, so a FIFO cannot hang the call) and what was
 * opened is checked: a regular file, within the size limit, and the very file (same device and
 * inode) that the path's real location inside the folder holds. A file swapped for a symbolic
 * link between the check and the read is therefore refused. What no path check can stop is a
 * hard link to an outside file placed inside the folder by someone who can write there.
 *
 * @module
 */
import fs from "node:fs";
import { isAbsolute, join, sep } from "node:path";

/** The outcome of resolving an upload path: the real path to read, or why it is refused. */
export type Upload = { path: string } | { error: string };

/** The default largest upload: like `content_string`'s limit. */
export const DEFAULT_MAX_UPLOAD_BYTES = 1024 * 1024;

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

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
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
  if (!inside(root, real)) return { error: `"${path}" is outside the upload folder` };
  const info = await Deno.stat(real);
  if (!info.isFile) return { error: `"${path}" is not a regular file` };
  return { path: real };
}

/** How an upload is read. */
export interface UploadLimits {
  /** Largest size, in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Stops the read: the call's cancellation and its `timeout_s`. */
  signal?: AbortSignal;
}

/**
 * Reads the upload `path` from the folder `root`: the file opened is the file checked, a regular
 * file no larger than the limit, read until the signal says stop. Throws with a reason to show.
 */
export async function readUpload(
  root: string | undefined,
  path: string,
  limits: UploadLimits = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const resolved = await resolveUpload(root, path);
  if ("error" in resolved) throw new Error(resolved.error);
  const max = limits.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;
  const handle = await fs.promises.open(resolved.path, flags).catch(() => {
    throw new Error(`"${path}" cannot be opened`);
  });
  try {
    const opened = await handle.stat();
    if (!opened.isFile()) throw new Error(`"${path}" is not a regular file`);
    if (opened.size > max) throw new Error(`"${path}" is larger than ${max} bytes`);
    // The path may have been swapped since it was resolved: what was opened must be what the
    // path's real location inside the folder holds now.
    const again = await resolveUpload(root, path);
    const now = "path" in again ? await Deno.stat(again.path).catch(() => undefined) : undefined;
    if (!now || now.ino !== opened.ino || now.dev !== opened.dev) {
      throw new Error(`"${path}" changed while it was being read; nothing was sent`);
    }
    return await readWhole(handle, opened.size, path, limits.signal);
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Reads the `size` bytes of an opened file; a file that grows meanwhile is refused. */
async function readWhole(
  handle: fs.promises.FileHandle,
  size: number,
  path: string,
  signal: AbortSignal | undefined,
): Promise<Uint8Array<ArrayBuffer>> {
  const buffer = new Uint8Array(size + 1);
  let at = 0;
  while (true) {
    if (signal?.aborted) throw new Error(`reading "${path}" was stopped (timeout or cancellation)`);
    const { bytesRead } = await handle.read(buffer, at, Math.min(buffer.length - at, 65536), at);
    if (bytesRead === 0) return buffer.slice(0, at);
    at += bytesRead;
    if (at > size) throw new Error(`"${path}" changed while it was being read; nothing was sent`);
  }
}
