/**
 * The one folder `content_file` may read from. With no folder configured, uploads are refused; a
 * path that leads outside it (`..`, an absolute path elsewhere, a symbolic link pointing out) is
 * refused before anything is sent.
 *
 * The entry is checked without following it (a regular file within the size limit), then opened
 * without blocking (so a FIFO cannot hang the call), and what was opened must be that very file
 * (same device and inode): a file swapped for a symbolic link between the check and the read is
 * refused. Folders on the way to a file in a subfolder must be ones nobody but the owner can
 * change (see `checkSteadyFolders`). What no path check can stop is a hard link to an outside
 * file placed inside the folder by someone who can write there.
 *
 * @module
 */
import fs from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";

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
  await checkSteadyFolders(root!, resolved.path, path);
  const max = limits.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  // What the folder's entry names now, without following it: a regular file, not a link.
  const checked = await Deno.lstat(resolved.path).catch(() => undefined);
  if (!checked?.isFile) {
    throw new Error(`"${path}" changed while it was being read; nothing was sent`);
  }
  if (checked.size > max) throw new Error(`"${path}" is larger than ${max} bytes`);
  const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;
  const handle = await fs.promises.open(resolved.path, flags).catch(() => {
    throw new Error(`"${path}" cannot be opened`);
  });
  try {
    // If the entry was swapped for a link (or anything else) after the lstat, the open reached
    // another file: only the very file that was checked is read.
    const opened = await handle.stat();
    if (!opened.isFile()) throw new Error(`"${path}" is not a regular file`);
    if (opened.ino !== checked.ino || opened.dev !== checked.dev) {
      throw new Error(`"${path}" changed while it was being read; nothing was sent`);
    }
    if (opened.size > max) throw new Error(`"${path}" is larger than ${max} bytes`);
    return await readWhole(handle, opened.size, path, limits.signal);
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Refuses a file in a subfolder unless no one but the owners could swap a folder on its way.
 *
 * Opening a path walks it again, and neither Deno nor Node offers `openat` or `O_NOFOLLOW`, so a
 * subfolder renamed away and replaced by a link between the check and the open would lead the
 * open outside. A subfolder can be replaced only by someone who may write to the folder holding
 * it, so every folder on the way that holds a subfolder of the path (the upload folder first)
 * must be a real folder owned by the upload folder's owner (or the superuser) and writable by
 * its owner alone. Walked from the top, each check rests on the one before. The file's own entry
 * needs no such rule: `readUpload` compares what it opened with what it checked.
 */
async function checkSteadyFolders(root: string, real: string, path: string): Promise<void> {
  const folders = relative(root, real).split(sep).slice(0, -1);
  if (folders.length === 0) return;
  const owner = (await Deno.lstat(root)).uid;
  let folder = root;
  for (const [i, name] of ["", ...folders].entries()) {
    if (i > 0) folder = join(folder, name);
    const info = await Deno.lstat(folder).catch(() => undefined);
    const problem = !info?.isDirectory
      ? "a folder on its way is no longer a folder"
      : info.mode === null || info.uid === null
      ? "this system does not report who may change its folders"
      : info.uid !== owner && info.uid !== 0
      ? `${i === 0 ? "the upload folder" : `"${name}"`} belongs to another user`
      : (info.mode & 0o022) !== 0
      ? `${i === 0 ? "the upload folder" : `"${name}"`} is writable by its group or by others`
      : undefined;
    if (problem) {
      throw new Error(
        `"${path}" is in a subfolder that others could swap for a link: ${problem}; put the ` +
          "file directly in the upload folder, or let only the owner write to the folders on its way",
      );
    }
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
