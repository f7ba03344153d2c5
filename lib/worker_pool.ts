/**
 * The supervisor's workers (`[daemon] workers = N`): N copies of this
 * program, each serving the TCP listeners on sockets bound with
 * `SO_REUSEPORT`, so the kernel spreads new connections over them. The pool
 * starts them, hands each the validated config text (a reload is the same
 * step again), answers their admission questions (lib/admission_broker.ts),
 * sums their counters for metrics, restarts one that dies (with back-off,
 * logged), and stops them all before the supervisor exits.
 *
 * A listener on port 0 gets its port here, from a socket bound with
 * `SO_REUSEPORT` and closed once the workers have bound theirs: every
 * worker then binds that one port.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { formatHostPort } from "./address.ts";
import type { AdmissionRequest } from "./admission.ts";
import { AdmissionBroker } from "./admission_broker.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import type { ListenerStats } from "./running_listener.ts";
import type { Service } from "./service.ts";
import {
  ListenerStartError,
  type ListenerStatus,
  type ReloadSummary,
  StartFailure,
} from "./supervisor.ts";
import { type ChannelMessage, LineChannel } from "./worker_channel.ts";
import { clearCloseOnExec, setCloseOnExec } from "./close_on_exec.ts";
import type { PassedSocket } from "./socket_activation.ts";
import { servedByWorkers } from "./worker_config.ts";
import {
  countsKey,
  type LeaseAnswer,
  type LeaseKind,
  leaseKind,
  type RevokeMessage,
  WORKER_ENV,
} from "./worker_protocol.ts";

/** How a worker process is started: a program and its arguments. */
export interface WorkerCommand {
  /** The program. */
  program: string;
  /** Its arguments. */
  args: string[];
}

/** Options for {@linkcode WorkerPool}. */
export interface WorkerPoolOptions {
  /** How many workers. */
  count: number;
  /** The supervisor's logger. */
  log: Logger;
  /** The service table. */
  services: readonly Service[];
  /** How a worker is started. @default {this program's `serve`} */
  command?: WorkerCommand;
  /**
   * systemd's sockets, handed on to every worker (their close-on-exec flag
   * is cleared for the spawn only). @default {none}
   */
  passed?: readonly PassedSocket[];
}

interface Worker {
  number: number;
  pid: number;
  child: Deno.ChildProcess;
  channel: LineChannel;
  startedAt: number;
  listeners: ListenerStatus[];
  exited: Promise<Deno.CommandStatus>;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
// A worker that ran this long before dying starts over at the first back-off.
const STABLE_MS = 10_000;
// A worker that does not answer for its counters this soon is left out of a scrape.
const STATS_TIMEOUT_MS = 2_000;
// After its shutdown timeout, a worker gets this long to exit before SIGKILL.
const EXIT_GRACE_MS = 5_000;
// Removed from a worker's environment: systemd's notifications are the supervisor's.
const SUPERVISOR_ONLY_ENV = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/**
 * How this program starts itself as a worker: under `deno run`, the same
 * Deno with this checkout's main.ts and deno.json; as an executable (the
 * offline build or `deno compile`), the executable itself.
 * @returns the program and arguments, ending with `serve`
 */
export function selfCommand(): WorkerCommand {
  const program = Deno.execPath();
  const url = import.meta.url;
  const script = navigator.userAgent.startsWith("Deno/") && url.startsWith("file:") &&
    !url.includes("/deno-compile-");
  if (!script) return { program, args: ["serve"] };
  const root = new URL("../", url);
  return {
    program,
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      ...permissionFlags(),
      "--config",
      fileURLToPath(new URL("deno.json", root)),
      fileURLToPath(new URL("main.ts", root)),
      "serve",
    ],
  };
}

const PERMISSIONS = ["read", "write", "net", "env", "sys", "run", "ffi", "import"] as const;

/**
 * The `deno run` permission flags that give a worker what this process
 * holds, and no more: `--allow-NAME` for each permission granted in full.
 * One granted only in part (`--allow-read=/etc`) is not passed on: the
 * worker goes without it.
 * @returns the flags (none when nothing is granted)
 */
export function permissionFlags(): string[] {
  const flags: string[] = [];
  for (const name of PERMISSIONS) {
    let state: Deno.PermissionState;
    try {
      state = Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state;
    } catch {
      continue; // Not a permission this Deno knows.
    }
    if (state === "granted") flags.push(`--allow-${name}`);
  }
  return flags;
}

/** Runs, feeds, restarts and stops the worker processes. */
export class WorkerPool {
  #count: number;
  #log: Logger;
  #services: readonly Service[];
  #command: WorkerCommand;
  #passed: readonly PassedSocket[];
  #workers = new Map<number, Worker>();
  #broker = new AdmissionBroker();
  #current?: ChannelMessage;
  #ports = new Map<string, { hostname: string; port: number }>();
  #stopping = false;
  #restartTimers = new Map<number, ReturnType<typeof setTimeout>>();
  #backoff = new Map<number, number>();
  #restarting = new Set<Promise<void>>();
  #revocations = new Map<string, Promise<void>>();

  /**
   * Starts nothing yet: {@linkcode WorkerPool.apply} starts the workers.
   * @param options the count, logger, service table and command
   */
  constructor(options: WorkerPoolOptions) {
    this.#count = options.count;
    this.#log = options.log;
    this.#services = options.services;
    this.#command = options.command ?? selfCommand();
    this.#passed = options.passed ?? [];
  }

  /** The process ids of the workers running now, by worker number. */
  get pids(): number[] {
    return [...this.#workers.values()].sort((a, b) => a.number - b.number).map((w) => w.pid);
  }

  /** The broker holding the counts (for tests). */
  get broker(): AdmissionBroker {
    return this.#broker;
  }

  /** The workers' listeners as last reported, summed over the workers. */
  get listeners(): ListenerStatus[] {
    return this.#merge([...this.#workers.values()].map((w) => w.listeners));
  }

  /**
   * Asks every worker for its counters and sums them per listener.
   * @returns one status per listener the workers serve
   */
  async gather(): Promise<ListenerStatus[]> {
    const workers = [...this.#workers.values()];
    await Promise.all(workers.map(async (worker) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), STATS_TIMEOUT_MS);
      });
      try {
        const answer = await Promise.race([worker.channel.request({ op: "stats" }), late]);
        if (answer && Array.isArray(answer.listeners)) {
          worker.listeners = answer.listeners as ListenerStatus[];
        }
      } catch {
        // Gone: its last figures stand until it is replaced.
      } finally {
        clearTimeout(timer);
      }
    }));
    return this.listeners;
  }

  /**
   * Hands `config` to every worker (the first call starts them: worker 1
   * alone first, so that it may clean what a crash left, then the others).
   * When any worker cannot apply it, those that did go back to the previous
   * config and nothing changes.
   * @param config a validated config (with its text)
   * @returns what the workers added, changed, kept and removed
   * @throws {StartFailure} when a listener cannot bind or open in a worker
   */
  async apply(config: Config): Promise<ReloadSummary> {
    if (this.#stopping) throw new TypeError("The workers are stopping");
    const placeholders: Deno.Listener[] = [];
    try {
      const ports = await this.#reservePorts(config, placeholders);
      const message: ChannelMessage = {
        op: "apply",
        text: config.text,
        file: config.file,
        baseDir: config.baseDir,
        ports,
        fds: this.#passed.length > 0,
      };
      let answers: ChannelMessage[];
      if (this.#current === undefined) {
        const first = this.#spawn(1);
        answers = [await this.#applyTo(first, { ...message, alone: true })];
        if (answers[0]!.ok === true) {
          const rest = [];
          for (let n = 2; n <= this.#count; n++) rest.push(this.#spawn(n));
          answers.push(...await Promise.all(rest.map((w) => this.#applyTo(w, message))));
        }
      } else {
        const workers = [...this.#workers.values()];
        answers = await Promise.all(workers.map((w) => this.#applyTo(w, message)));
        const failed = answers.some((a) => a.ok !== true);
        if (failed) {
          await Promise.all(
            workers.map((w, i) =>
              answers[i]!.ok === true ? this.#applyTo(w, this.#current!) : undefined
            ),
          );
        }
      }
      const failures = answers.flatMap((a) => a.ok === true ? [] : failuresOf(a));
      if (failures.length > 0) throw new StartFailure(dedupe(failures));
      this.#current = message;
      return (answers[0]?.summary as ReloadSummary | undefined) ??
        { added: [], changed: [], kept: [], removed: [] };
    } finally {
      for (const placeholder of placeholders) placeholder.close();
    }
  }

  /** Ports for the workers' listeners on port 0: the same one for every worker. */
  async #reservePorts(
    config: Config,
    placeholders: Deno.Listener[],
  ): Promise<Record<string, number>> {
    const ports: Record<string, number> = {};
    const wanted = new Set<string>();
    for (const listener of config.listeners) {
      if (listener.address.fd !== undefined || listener.address.port !== 0) continue;
      if (!servedByWorkers(listener, this.#services)) continue;
      const { hostname } = listener.address;
      wanted.add(listener.name);
      const known = this.#ports.get(listener.name);
      if (known && known.hostname === hostname) {
        ports[listener.name] = known.port;
        continue;
      }
      let socket: Deno.Listener;
      try {
        // Awaited: in the offline executable, binding completes later.
        socket = await Deno.listen({ hostname, port: 0, transport: "tcp", reusePort: true });
      } catch (cause) {
        throw new StartFailure([
          new ListenerStartError({
            listener: listener.name,
            address: `${formatHostPort(hostname, 0)}/tcp`,
            phase: "bind",
            cause,
          }),
        ]);
      }
      placeholders.push(socket);
      const port = (socket.addr as Deno.NetAddr).port;
      this.#ports.set(listener.name, { hostname, port });
      ports[listener.name] = port;
    }
    for (const name of this.#ports.keys()) if (!wanted.has(name)) this.#ports.delete(name);
    return ports;
  }

  async #applyTo(worker: Worker, message: ChannelMessage): Promise<ChannelMessage> {
    try {
      const answer = await worker.channel.request(message);
      if (answer.ok === true && Array.isArray(answer.listeners)) {
        worker.listeners = answer.listeners as ListenerStatus[];
      }
      return answer;
    } catch {
      return {
        ok: false,
        failures: [{
          phase: "open",
          listener: "?",
          address: "?",
          message: `Worker ${worker.number} (pid ${worker.pid}) exited before it was ready`,
        }],
      };
    }
  }

  #spawn(number: number): Worker {
    const env = Deno.env.toObject();
    for (const name of SUPERVISOR_ONLY_ENV) delete env[name];
    env[WORKER_ENV] = String(number);
    const fds = this.#passed.map((socket) => socket.fd);
    if (fds.length > 0) {
      // As sd_listen_fds(3) expects, less LISTEN_PID: the worker's pid is not known yet.
      env.LISTEN_FDS = String(fds.length);
      env.LISTEN_FDNAMES = this.#passed.map((socket) => socket.name).join(":");
      clearCloseOnExec(fds);
    }
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.#command.program, {
        args: this.#command.args,
        env,
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } finally {
      if (fds.length > 0) setCloseOnExec(fds);
    }
    const pid = child.pid;
    const channel = new LineChannel(child.stdout, child.stdin, (m) => this.#answer(pid, m));
    const worker: Worker = {
      number,
      pid,
      child,
      channel,
      startedAt: performance.now(),
      listeners: [],
      exited: child.status,
    };
    this.#workers.set(number, worker);
    void child.status.then((status) => this.#exited(worker, status));
    this.#log.debug(`Worker ${number} started`, { pid });
    return worker;
  }

  /** Leases slots; when none is free, revokes every worker's spare ones first. */
  async #lease(pid: number, message: ChannelMessage): Promise<ChannelMessage> {
    const kind = leaseKind(message.kind);
    const request = {
      listener: countsKey(kind, String(message.listener)),
      max: Number(message.max),
      want: Number(message.want) || 1,
    };
    let granted = this.#broker.lease(pid, request);
    if (granted === 0) {
      await this.#revoke(kind, String(message.listener));
      granted = this.#broker.lease(pid, { ...request, want: 1 });
    }
    const answer: LeaseAnswer = granted > 0
      ? { ok: true, granted }
      : { ok: false, reason: "max_connections" };
    return { ...answer };
  }

  /**
   * Admits one connection (per-source limits: asked each time); when none
   * is free, revokes every worker's spare leased slots and asks once more.
   */
  async #admit(pid: number, request: AdmissionRequest): Promise<ChannelMessage> {
    let answer = this.#broker.admit(pid, request);
    if (!answer.ok && answer.reason === "max_connections") {
      await this.#revoke("connections", String(request.listener));
      answer = this.#broker.admit(pid, request);
    }
    return { ...answer };
  }

  #revoke(kind: LeaseKind, name: string): Promise<void> {
    const listener = countsKey(kind, name);
    const running = this.#revocations.get(listener);
    if (running) return running;
    this.#broker.revoking(listener, true);
    const holders = new Set(this.#broker.holders(listener));
    const workers = [...this.#workers.values()].filter((w) => holders.has(w.pid));
    const round = Promise.all(workers.map(async (worker) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), STATS_TIMEOUT_MS);
      });
      // The worker gives its spare slots up when it answers: a late answer
      // still counts (only the waiting is bounded).
      const given = worker.channel.request(
        { op: "revoke", kind, listener: name } satisfies RevokeMessage,
      ).then(
        (answer) => this.#broker.giveBack(worker.pid, listener, Number(answer.returned) || 0),
        () => {
          // Gone: what it held is given back when its exit is seen.
        },
      );
      try {
        await Promise.race([given, late]);
      } finally {
        clearTimeout(timer);
      }
    })).then(() => {
      this.#broker.revoking(listener, false);
      this.#revocations.delete(listener);
    });
    this.#revocations.set(listener, round);
    return round;
  }

  #answer(pid: number, message: ChannelMessage): ChannelMessage | Promise<ChannelMessage> | void {
    switch (message.op) {
      case "admit":
        return this.#admit(pid, message as unknown as AdmissionRequest);
      case "lease":
        return this.#lease(pid, message);
      case "return":
        this.#broker.giveBack(
          pid,
          countsKey(leaseKind(message.kind), String(message.listener)),
          Number(message.count) || 0,
        );
        return;
      case "release":
        this.#broker.release(pid, {
          listener: String(message.listener),
          connection: message.connection === true,
          source: typeof message.source === "string" ? message.source : undefined,
        });
        return;
    }
    return { ok: false, error: `unknown op ${String(message.op)}` };
  }

  #exited(worker: Worker, status: Deno.CommandStatus): void {
    this.#broker.forget(worker.pid);
    if (this.#workers.get(worker.number) === worker) this.#workers.delete(worker.number);
    if (this.#stopping) return;
    void worker.channel.close();
    const how = status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`;
    if (this.#current === undefined) {
      this.#log.error(`Worker ${worker.number} exited during start-up (${how})`, {
        pid: worker.pid,
      });
      return;
    }
    const lived = performance.now() - worker.startedAt;
    const last = this.#backoff.get(worker.number);
    const backoff = last === undefined || lived >= STABLE_MS
      ? FIRST_BACKOFF_MS
      : Math.min(last * 2, MAX_BACKOFF_MS);
    this.#backoff.set(worker.number, backoff);
    this.#log.warn(
      `Worker ${worker.number} exited (${how}); restarting it in ${backoff}ms`,
      { pid: worker.pid },
    );
    const timer = setTimeout(() => {
      this.#restartTimers.delete(worker.number);
      const restart = this.#restart(worker.number);
      this.#restarting.add(restart);
      void restart.finally(() => this.#restarting.delete(restart));
    }, backoff);
    this.#restartTimers.set(worker.number, timer);
  }

  async #restart(number: number): Promise<void> {
    if (this.#stopping || this.#workers.has(number)) return;
    const worker = this.#spawn(number);
    let message: ChannelMessage | undefined;
    let answer: ChannelMessage = { ok: false };
    // A reload while it started: it gets the newest config.
    while (message !== this.#current && !this.#stopping) {
      message = this.#current!;
      answer = await this.#applyTo(worker, message);
      if (answer.ok !== true) break;
    }
    if (this.#stopping) return;
    if (answer.ok === true) {
      this.#log.info(`Worker ${number} restarted`, { pid: worker.pid });
      return;
    }
    const why = failuresOf(answer).map((f) => f.message).join("; ");
    this.#log.error(`Worker ${number} could not start again: ${why}`, { pid: worker.pid });
    try {
      worker.child.kill("SIGKILL");
    } catch {
      // Already gone (and its exit schedules the next try).
    }
  }

  /**
   * Stops every worker: each drains its connections within `timeoutMs`, is
   * killed if it is still there `EXIT_GRACE_MS` later, and is waited for.
   * @param timeoutMs the grace period for connections in flight
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    this.#restartTimers.clear();
    // A worker being restarted is in the set (it was spawned before its
    // config was sent): one that hangs while starting is killed like the rest.
    const workers = [...this.#workers.values()];
    for (const worker of workers) worker.channel.send({ op: "stop", timeoutMs });
    const killer = setTimeout(() => {
      for (const worker of workers) {
        try {
          worker.child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }, timeoutMs + EXIT_GRACE_MS);
    try {
      await Promise.all(workers.map(async (worker) => {
        const status = await worker.exited;
        await worker.channel.done;
        if (!status.success) {
          this.#log.warn(`Worker ${worker.number} did not stop cleanly`, {
            pid: worker.pid,
            code: status.code,
            signal: status.signal ?? undefined,
          });
        }
      }));
    } finally {
      clearTimeout(killer);
    }
    await Promise.all(this.#restarting);
    for (const worker of workers) await worker.channel.close();
  }

  #merge(perWorker: ListenerStatus[][]): ListenerStatus[] {
    const merged = new Map<string, ListenerStatus>();
    for (const list of perWorker) {
      for (const status of list) {
        const seen = merged.get(status.name);
        if (!seen) merged.set(status.name, { ...status, stats: structuredClone(status.stats) });
        else addStats(seen.stats, status.stats);
      }
    }
    const result = [...merged.values()];
    for (const status of result) {
      if (status.stats.sources !== undefined) {
        status.stats.sources = this.#broker.sources(status.name);
      }
    }
    return result;
  }
}

interface FailureFields {
  phase: "bind" | "open";
  listener: string;
  address: string;
  message: string;
}

function failuresOf(answer: ChannelMessage): ListenerStartError[] {
  const list = Array.isArray(answer.failures) ? answer.failures as FailureFields[] : [];
  if (list.length === 0) {
    list.push({
      phase: "open",
      listener: "?",
      address: "?",
      message: String(answer.error ?? "a worker failed"),
    });
  }
  return list.map((f) => {
    const error = new ListenerStartError({
      listener: f.listener ?? "?",
      address: f.address ?? "?",
      phase: f.phase === "bind" ? "bind" : "open",
      cause: new Error(f.message),
    });
    error.message = f.message;
    return error;
  });
}

function dedupe(errors: ListenerStartError[]): ListenerStartError[] {
  const seen = new Set<string>();
  return errors.filter((e) => !seen.has(e.message) && seen.add(e.message));
}

/** Adds the counters of `more` into `into`, field by field. */
function addStats(into: ListenerStats, more: ListenerStats): void {
  const target = into as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(more)) {
    if (typeof value === "number") {
      target[key] = (typeof target[key] === "number" ? target[key] as number : 0) + value;
    } else if (value && typeof value === "object") {
      const inner = (target[key] ??= {}) as Record<string, number>;
      for (const [k, v] of Object.entries(value as Record<string, number>)) {
        if (typeof v === "number") inner[k] = (inner[k] ?? 0) + v;
      }
    }
  }
}
