/**
 * Helpers for the hostile suite: a daemon's RSS and open descriptors from
 * /proc, clients that stop reading, bounded waits, and the suite's size.
 *
 * @module
 */

/**
 * The resident set size of a process.
 * @param pid the process
 * @returns VmRSS in KiB
 */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
}

/**
 * The open file descriptors of a process.
 * @param pid the process
 * @returns how many entries /proc/PID/fd has
 */
export function fdCount(pid: number): number {
  let count = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) count++;
  return count;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits (at most `timeoutMs`) until a reading of `sample` stops moving by
 * more than `tolerance` between two looks 250 ms apart.
 * @param sample what to read, e.g. a daemon's RSS
 * @param options tolerance and bound
 * @returns the last reading
 */
export async function steady(
  sample: () => number,
  options: { tolerance?: number; timeoutMs?: number } = {},
): Promise<number> {
  const tolerance = options.tolerance ?? 0;
  const deadline = performance.now() + (options.timeoutMs ?? 5000);
  let last = sample();
  for (;;) {
    await sleep(250);
    const now = sample();
    if (Math.abs(now - last) <= tolerance || performance.now() > deadline) return now;
    last = now;
  }
}

/**
 * A daemon's RSS once it has stopped moving (within 256 KiB over 250 ms).
 * @param pid the daemon
 * @returns VmRSS in KiB
 */
export function settle(pid: number): Promise<number> {
  return steady(() => rssKiB(pid), { tolerance: 256, timeoutMs: 6000 });
}

/** A client that has stopped reading. */
export interface StalledClient {
  /** Bytes the daemon took before it stopped reading. */
  sent: number;
  /** Closes the connection. */
  close(): void;
}

/**
 * Connects and writes `bytes` without ever reading, until everything is sent
 * or a write has not completed for `stallMs` (the daemon stopped reading).
 * @param port the daemon's port on 127.0.0.1
 * @param bytes what to send
 * @param stallMs how long a write may wait before the client gives up writing
 * @returns the client, still connected
 */
export async function stalledWriter(
  port: number,
  bytes: Uint8Array,
  stallMs = 300,
): Promise<StalledClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let sent = 0;
  let pending: Promise<number> | undefined;
  while (sent < bytes.length) {
    const writing = conn.write(bytes.subarray(sent));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<"stalled">((resolve) => {
      timer = setTimeout(() => resolve("stalled"), stallMs);
    });
    const n = await Promise.race([writing, stalled]).catch(() => "stalled" as const);
    clearTimeout(timer);
    if (n === "stalled") {
      pending = writing;
      break;
    }
    sent += n;
  }
  pending?.catch(() => {});
  return {
    sent,
    close: () => {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
  };
}

/** Whether the long hostile run was asked for (`SWITCHBOARD_HOSTILE=long`). */
export const LONG: boolean = Deno.env.get("SWITCHBOARD_HOSTILE") === "long";

/**
 * A count or duration for the hostile suite: as given in CI, ten times that
 * in the long run.
 * @param n the CI-sized amount
 * @returns `n`, or `10 * n` with `SWITCHBOARD_HOSTILE=long`
 */
export function scaled(n: number): number {
  return LONG ? n * 10 : n;
}

/**
 * `promise`'s value, or undefined after `ms`; the timer never outlives the call.
 * @param promise what to wait for
 * @param ms the bound
 * @returns the value, or undefined on timeout
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits (at most `timeoutMs`) until `sample` reads `target`: what is closed
 * asynchronously (a killed command's pipes, a connection's socket) gets its
 * time, and a leak still shows as the last reading.
 * @param sample what to read, e.g. a daemon's fd count
 * @param target the value wanted
 * @param timeoutMs the bound
 * @returns the last reading
 */
export async function reaches(
  sample: () => number,
  target: number,
  timeoutMs = 8000,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const now = sample();
    if (now === target || performance.now() > deadline) return now;
    await sleep(100);
  }
}
