/**
 * Directory listings for the `file` service: sorted by name in UTF-8 byte
 * order, capped in entries and in encoded size, in bounded memory however
 * large the directory; symlinks shown as what they point to when that is
 * inside the root, omitted otherwise.
 *
 * @module
 */

import { isServableName, type PathRules, type ServedRoot } from "./safe_path.ts";

/** One entry of a listing, as sent to clients. */
export interface ListEntry {
  /** The name within the directory. */
  name: string;
  /** What it is (a symlink shows as what it points to). */
  type: "file" | "dir";
  /** Length in bytes; 0 for a directory. */
  size: number;
  /** Modification time, integer ms since the Unix epoch. */
  mtime: number;
}

/** A listing: the first entries after `after`, and whether more exist. */
export interface Listing {
  /** The entries, sorted. */
  entries: ListEntry[];
  /** Whether entries were left out (by either cap). */
  truncated: boolean;
}

/** Options for {@linkcode listDirectory}. */
export interface ListOptions {
  /** At most this many entries. */
  maxEntries: number;
  /** At most this many bytes of JSON for the entries (the header limit). */
  maxBytes: number;
  /** Only names sorting after this one (to continue a truncated listing). */
  after?: string;
  /** Which names are visible. */
  rules: PathRules;
}

const encoder = new TextEncoder();
// Entries are examined this many at a time (stat calls in parallel).
const BATCH = 32;

/**
 * Compares strings in UTF-8 byte order (= code point order), which differs
 * from JavaScript's UTF-16 order for characters above U+FFFF.
 * @param a a string
 * @param b another
 * @returns negative, zero or positive
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Move surrogates (U+D800–DFFF) above U+E000–U+FFFF, as code points are.
    if (x >= 0xd800) x += x < 0xe000 ? 0x2000 : -0x800;
    if (y >= 0xd800) y += y < 0xe000 ? 0x2000 : -0x800;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * A file's modification time for the protocol.
 * @param info a stat
 * @returns integer ms since the epoch (0 when unknown)
 */
export function mtimeMs(info: Deno.FileInfo): number {
  return Math.floor(info.mtime?.getTime() ?? 0);
}

interface Candidate {
  name: string;
  symlink: boolean;
}

/**
 * Lists a directory inside the root.
 * @param root the served root
 * @param dir the directory's real path
 * @param options caps, continuation point and visibility rules
 * @returns the entries and whether the listing was truncated
 * @throws {Error} when the directory cannot be read
 */
export async function listDirectory(
  root: ServedRoot,
  dir: string,
  options: ListOptions,
): Promise<Listing> {
  const keep = Math.max(options.maxEntries * 2, BATCH);
  let candidates: Candidate[] = [];
  let trimmed = false;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile && !entry.isDirectory && !entry.isSymlink) continue;
    if (!isServableName(entry.name, options.rules)) continue;
    if (options.after !== undefined && compareUtf8(entry.name, options.after) <= 0) continue;
    candidates.push({ name: entry.name, symlink: entry.isSymlink });
    // Bounded memory: keep only the smallest names of a huge directory.
    if (candidates.length >= keep * 2) {
      candidates = sorted(candidates).slice(0, keep);
      trimmed = true;
    }
  }
  candidates = sorted(candidates);
  if (candidates.length > keep) {
    candidates = candidates.slice(0, keep);
    trimmed = true;
  }
  const entries: ListEntry[] = [];
  let bytes = 2;
  for (let start = 0; start < candidates.length; start += BATCH) {
    const batch = candidates.slice(start, start + BATCH);
    const described = await Promise.all(batch.map((c) => describe(root, dir, c)));
    for (const entry of described) {
      if (entry === undefined) continue;
      const size = encoder.encode(JSON.stringify(entry)).length + 1;
      if (entries.length >= options.maxEntries || bytes + size > options.maxBytes) {
        return { entries, truncated: true };
      }
      entries.push(entry);
      bytes += size;
    }
  }
  return { entries, truncated: trimmed };
}

function sorted(candidates: Candidate[]): Candidate[] {
  return candidates.sort((a, b) => compareUtf8(a.name, b.name));
}

async function describe(
  root: ServedRoot,
  dir: string,
  candidate: Candidate,
): Promise<ListEntry | undefined> {
  const path = `${dir}/${candidate.name}`;
  try {
    let info = await Deno.lstat(path);
    if (info.isSymlink) {
      // Shown as its target, only when that is inside the root and visible.
      const real = root.realPathOf(path, [candidate.name]);
      info = await Deno.stat(real);
    }
    if (info.isFile) {
      return { name: candidate.name, type: "file", size: info.size, mtime: mtimeMs(info) };
    }
    if (info.isDirectory) {
      return { name: candidate.name, type: "dir", size: 0, mtime: mtimeMs(info) };
    }
  } catch {
    // Gone meanwhile, dangling, outside the root or hidden: not listed.
  }
  return undefined;
}
