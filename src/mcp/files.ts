/**
 * The one folder `content_file` may read from. With no folder configured, uploads are refused; a
 * path that leads outside it (`..`, an absolute path elsewhere, a symbolic link pointing out) is
 * refused before anything is sent, and a path that is outside as written is refused without
 * touching the disk.
 *
 * Nobody but the server's user (or the superuser) may be able to swap the folder or, for a file in
 * a subfolder, a folder on its way: that is checked at start for the folders above it and on each
 * call for the ones below (see `trustedFolder`). The file's entry is checked without following it
 * (a regular file within the size limit), then opened without blocking (so a FIFO cannot hang the
 * call), and what was opened must be that very file (same device and inode): a file swapped for a
 * symbolic link between the check and the read is refused. The whole read, from the first look at
 * the disk, ends with the call's `timeout_s` or cancellation. What no path check can stop is a hard
 * link to an outside file placed inside the folder by someone who can write there.
 *
 * @module
 */
import fs from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/**
 * The outcome of resolving an upload path: the real path to read and what its entry held (not
 * followed), or why it is refused.
 */
export type Upload = { path: string; entry: Deno.FileInfo } | { error: string };

/** The default largest upload: like `content_string`'s limit. */
export const DEFAULT_MAX_UPLOAD_BYTES = 1024 * 1024;

/**
 * Checks the upload folder at start; returns its real path or throws with the reason. Messages
 * name the folder as `source` gave it (a flag or the variable) and, for a relative path, the
 * absolute path it was taken as (relative paths start from the working folder).
 */
export function checkFileRoot(root: string, source = "SQUONK2_MCP_FILE_ROOT"): string {
  const absolute = resolve(root);
  const named = absolute === root ? `${source} "${root}"` : `${source} "${root}" ("${absolute}")`;
  let real: string;
  try {
    real = Deno.realPathSync(absolute);
  } catch (error) {
    throw new Error(`${named} cannot be used: ${(error as Error).message}`);
  }
  if (!Deno.statSync(real).isDirectory) throw new Error(`${named} is not a directory`);
  // Whoever may replace a folder above it could swap the whole upload folder for a link.
  for (let child = real; dirname(child) !== child; child = dirname(child)) {
    const problem = trustedFolder(Deno.lstatSync(dirname(child)), Deno.lstatSync(child));
    if (problem) {
      throw new Error(
        `${named} cannot be used: "${dirname(child)}" ${problem}, who could swap "${child}" ` +
          "for a link; choose a folder that only this server's user (or root) can change, all " +
          "the way up",
      );
    }
  }
  return real;
}

/**
 * Whether only the server's user (or the superuser) can rename or replace the entry `child` of the
 * folder `folder`: undefined if so, else what lets others do it. The folder must be theirs and
 * writable by its owner alone, or shared with the sticky bit (like /tmp) around a child of theirs.
 */
function trustedFolder(folder: Deno.FileInfo, child: Deno.FileInfo): string | undefined {
  const user = serverUser();
  if (user === undefined) return "cannot be checked (the server may not ask for its user id)";
  if (folder.mode === null || folder.uid === null || child.uid === null) {
    return "cannot be checked on this system";
  }
  const ours = (uid: number) => uid === user || uid === 0;
  if (!folder.isDirectory) return "is not a folder";
  if (!ours(folder.uid)) return "belongs to another user";
  if ((folder.mode & 0o022) === 0) return undefined;
  if ((folder.mode & 0o1000) !== 0 && ours(child.uid)) return undefined;
  return "is writable by its group or by others";
}

let user: number | undefined | null = null;

/** The server's own user id, if the permission to ask for it (`--allow-sys=uid`) was granted. */
function serverUser(): number | undefined {
  if (user === null) {
    try {
      user = Deno.uid() ?? undefined;
    } catch {
      user = undefined;
    }
  }
  return user;
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
  // Outside as written: refused without touching the disk (a path elsewhere may hang, and whether
  // it exists is none of the caller's business).
  const candidate = resolve(root, path);
  if (!inside(root, candidate)) return { error: `"${path}" is outside the upload folder` };
  let real: string;
  try {
    real = await Deno.realPath(candidate);
  } catch {
    return { error: `"${path}" does not exist in the upload folder` };
  }
  if (!inside(root, real)) return { error: `"${path}" is outside the upload folder` };
  // The real path's last part is no link; should it have become one since, this says so.
  const entry = await Deno.lstat(real).catch(() => undefined);
  if (!entry) return { error: `"${path}" does not exist in the upload folder` };
  if (!entry.isFile) return { error: `"${path}" is not a regular file` };
  return { path: real, entry };
}

/** How an upload is read. */
export interface UploadLimits {
  /** Largest size, in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Stops the read: the call's cancellation and its `timeout_s`. */
  signal?: AbortSignal;
}

/** Most uploads read at once: a read stuck on a dead network disk keeps its place. */
const MAX_READING = 16;
let reading = 0;

/**
 * Reads the upload `path` from the folder `root`: the file opened is the file checked, a regular
 * file no larger than the limit, read until the signal says stop. Throws with a reason to show.
 */
export async function readUpload(
  root: string | undefined,
  path: string,
  limits: UploadLimits = {},
): Promise<Uint8Array<ArrayBuffer>> {
  if (reading >= MAX_READING) {
    throw new Error(`${MAX_READING} uploads are being read already: try again shortly`);
  }
  reading++;
  const read = readChecked(root, path, limits).finally(() => reading--);
  const { signal } = limits;
  if (!signal) return await read;
  // Looking at the disk cannot be interrupted (a dead network disk never answers), so the call
  // is answered at its time limit whatever the disk does; a late handle is closed by `read`.
  let stop: () => void = () => {};
  const stopped = new Promise<never>((_, reject) => {
    stop = () => reject(new Error(`reading "${path}" was stopped (timeout or cancellation)`));
    if (signal.aborted) stop();
    signal.addEventListener("abort", stop, { once: true });
  });
  read.catch(() => {});
  try {
    return await Promise.race([read, stopped]);
  } finally {
    signal.removeEventListener("abort", stop);
  }
}

async function readChecked(
  root: string | undefined,
  path: string,
  limits: UploadLimits,
): Promise<Uint8Array<ArrayBuffer>> {
  const resolved = await resolveUpload(root, path);
  if ("error" in resolved) throw new Error(resolved.error);
  await checkSteadyFolders(root!, resolved.path, path);
  const max = limits.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  // What the folder's entry held, not followed: the file that must be the one opened.
  const checked = resolved.entry;
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
 * Refuses a file in a subfolder unless only the server's user could swap a folder on its way.
 *
 * Opening a path walks it again, and Deno offers neither `openat` nor a working `O_NOFOLLOW`
 * under its permission checks (it resolves links itself), so a subfolder renamed away and
 * replaced by a link between the check and the open would lead the open outside. So every
 * folder on the way that holds a subfolder of the path (the upload folder first) must pass
 * `trustedFolder`; walked from the top, each check rests on the one before. The file's own entry
 * needs no such rule: `readChecked` compares what it opened with what it checked.
 */
async function checkSteadyFolders(root: string, real: string, path: string): Promise<void> {
  const names = relative(root, real).split(sep);
  let folder = root;
  for (const name of names.slice(0, -1)) {
    const child = join(folder, name);
    const [outer, inner] = await Promise.all([Deno.lstat(folder), Deno.lstat(child)])
      .catch(() => [undefined, undefined]);
    const problem = outer && inner ? trustedFolder(outer, inner) : "is no longer there";
    if (problem) {
      const named = folder === root ? "the upload folder" : `"${relative(root, folder)}"`;
      throw new Error(
        `"${path}" is in a subfolder that others could swap for a link: ${named} ${problem}; ` +
          "put the file directly in the upload folder, or let only the server's user write to " +
          "the folders on its way",
      );
    }
    folder = child;
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
