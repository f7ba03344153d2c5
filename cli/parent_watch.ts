/**
 * `serve --exit-with-parent`: notices when the command that started the
 * daemon is gone, so that killing `deno task start` (or `npx`, or whatever
 * ran it) never leaves an orphaned daemon holding its ports.
 *
 * Watched are the processes between the daemon and the leader of its
 * process group — the job a shell started, such as `npx deno task start` —
 * or, when the daemon leads its own group, its parent alone. A launcher in
 * that chain that dies (even by SIGKILL, which it cannot pass on) leaves its
 * child reparented, which is what is looked for, once every `intervalMs`.
 * Linux's `/proc` gives the chain; elsewhere only the parent is watched.
 *
 * @module
 */

/** One line of `/proc/PID/stat`, the fields used here. */
export interface ProcessStat {
  /** The process id. */
  pid: number;
  /** Its command name (at most 15 bytes, as the kernel keeps it). */
  comm: string;
  /** Its state letter: `R`, `S`, `Z` (exited, not yet reaped)… */
  state: string;
  /** Its parent's id. */
  ppid: number;
  /** Its process group's id. */
  pgrp: number;
  /** Its session's id. */
  session: number;
}

/**
 * Parses `/proc/PID/stat` (the command name may hold spaces and `)`).
 *
 * @example
 * ```ts
 * import { parseProcStat } from "./parent_watch.ts";
 * const stat = parseProcStat("42 (deno task) S 7 40 30 0 -1 4194560");
 * if (stat?.comm !== "deno task" || stat.ppid !== 7 || stat.pgrp !== 40) throw new Error();
 * ```
 *
 * @param text the file's content
 * @returns the fields, or undefined when the text is not such a line
 */
export function parseProcStat(text: string): ProcessStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const [state, ppid, pgrp, session] = text.slice(close + 2).split(" ").map((field, index) =>
    index === 0 ? field : Number(field)
  );
  const pid = Number(text.slice(0, open).trim());
  const numbers = [pid, ppid, pgrp, session];
  if (typeof state !== "string" || !numbers.every((n) => Number.isInteger(n))) return undefined;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state,
    ppid: ppid as number,
    pgrp: pgrp as number,
    session: session as number,
  };
}

function readStat(pid: number): ProcessStat | undefined {
  try {
    return parseProcStat(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return undefined;
  }
}

/** One watched process and the child of it that leads down to the daemon. */
interface Link {
  pid: number;
  comm: string;
  child: number;
}

/**
 * The chain of processes above `pid` whose death should stop it: up to its
 * process-group leader (or its session leader, if that comes first), or its
 * parent alone when it leads its group. PID 1 (init, systemd) is never part
 * of it.
 * @param pid the daemon's process id
 * @returns the links, nearest first; empty when there is nothing to watch
 */
export function watchedChain(pid: number = Deno.pid): Link[] {
  const self = readStat(pid);
  if (self === undefined) {
    const ppid = Deno.ppid;
    return ppid > 1 ? [{ pid: ppid, comm: "parent", child: pid }] : [];
  }
  const chain: Link[] = [];
  let child = self;
  for (let depth = 0; depth < 32 && child.ppid > 1; depth++) {
    const parent = readStat(child.ppid);
    chain.push({ pid: child.ppid, comm: parent?.comm ?? "parent", child: child.pid });
    if (
      parent === undefined || self.pgrp === self.pid || parent.pid === self.pgrp ||
      parent.pid === self.session
    ) break;
    child = parent;
  }
  return chain;
}

/**
 * Checks a chain: the first link whose process is gone, or whose child has
 * been reparented (its parent died), or undefined while all are there.
 * @param chain what {@linkcode watchedChain} returned
 * @returns why the daemon should stop, e.g. `process 4242 (deno) exited`
 */
export function brokenLink(chain: readonly Link[]): string | undefined {
  const procfs = readStat(Deno.pid) !== undefined;
  for (const link of chain) {
    const childsParent = link.child === Deno.pid ? Deno.ppid : readStat(link.child)?.ppid;
    const parent = procfs ? readStat(link.pid) : undefined;
    if (childsParent !== link.pid || (procfs && parent === undefined) || parent?.state === "Z") {
      return `process ${link.pid} (${link.comm}) exited`;
    }
  }
  return undefined;
}

/** Options for {@linkcode watchParent}. */
export interface WatchParentOptions {
  /** How often to look, in ms. @default {500} */
  intervalMs?: number;
}

/**
 * Aborts the returned signal once a process of the daemon's chain is gone.
 * The timer does not keep the process alive.
 * @param options how often to look
 * @returns the signal (its reason says which process went) and a way to stop watching
 */
export function watchParent(
  options: WatchParentOptions = {},
): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const chain = watchedChain();
  if (chain.length === 0) return { signal: controller.signal, stop: () => {} };
  const timer = setInterval(() => {
    const why = brokenLink(chain);
    if (why === undefined) return;
    clearInterval(timer);
    controller.abort(why);
  }, options.intervalMs ?? 500);
  Deno.unrefTimer(timer);
  return { signal: controller.signal, stop: () => clearInterval(timer) };
}
