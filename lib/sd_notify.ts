/**
 * The systemd notification protocol (sd_notify(3)): READY=1, RELOADING=1,
 * STOPPING=1, STATUS=… and watchdog pings, sent as datagrams to the unix
 * socket named by `NOTIFY_SOCKET` (a path, or `@name` for an abstract one).
 *
 * @module
 */

/** Where the notifier finds its settings (injectable for tests). */
export interface NotifierEnvironment {
  /** Reads an environment variable. @default {Deno.env.get} */
  env?: (name: string) => string | undefined;
  /** This process's pid, compared with WATCHDOG_PID. @default {Deno.pid} */
  pid?: number;
}

const encoder = new TextEncoder();

function socketPath(value: string): string {
  // "@name" is the abstract namespace, whose names start with a NUL byte.
  return value.startsWith("@") ? `\0${value.slice(1)}` : value;
}

// CLOCK_MONOTONIC in µs, which RELOADING=1 must carry for Type=notify-reload.
// /proc/uptime is CLOCK_BOOTTIME, equal to it on a machine that never slept.
function monotonicUsec(): number | undefined {
  try {
    const seconds = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
    return Number.isFinite(seconds) ? Math.round(seconds * 1e6) : undefined;
  } catch {
    return undefined;
  }
}

/** Talks to systemd's notification socket; does nothing harmful when it is gone. */
export class SystemdNotifier {
  #socket: Deno.DatagramConn;
  #target: Deno.UnixAddr;
  #watchdogUsec?: number;
  #watchdog?: ReturnType<typeof setInterval>;
  #onError: (error: unknown) => void;

  private constructor(
    socket: Deno.DatagramConn,
    target: string,
    watchdogUsec: number | undefined,
    onError: (error: unknown) => void,
  ) {
    this.#socket = socket;
    this.#target = { transport: "unixpacket", path: socketPath(target) };
    this.#watchdogUsec = watchdogUsec;
    this.#onError = onError;
  }

  /**
   * Creates a notifier when `NOTIFY_SOCKET` is set.
   * @param environment environment and pid
   * @param onError called when a notification cannot be sent
   * @returns the notifier, or undefined when not run by systemd
   * @throws {Deno.errors.PermissionDenied} when no local socket can be created
   */
  static fromEnvironment(
    environment: NotifierEnvironment = {},
    onError: (error: unknown) => void = () => {},
  ): SystemdNotifier | undefined {
    const env = environment.env ?? ((name: string) => Deno.env.get(name));
    const target = env("NOTIFY_SOCKET");
    if (!target) return undefined;
    const pid = environment.pid ?? Deno.pid;
    const usec = Number(env("WATCHDOG_USEC"));
    const forPid = env("WATCHDOG_PID");
    const watchdog = Number.isFinite(usec) && usec > 0 && (!forPid || Number(forPid) === pid)
      ? usec
      : undefined;
    // An abstract local address: nothing to clean up on the filesystem.
    const name = `\0switchboard-notify-${pid}-${crypto.randomUUID()}`;
    const socket = Deno.listenDatagram({ transport: "unixpacket", path: name });
    return new SystemdNotifier(socket, target, watchdog, onError);
  }

  /**
   * Sends raw assignments such as `READY=1\nSTATUS=…`.
   * @param state newline-separated assignments
   */
  async notify(state: string): Promise<void> {
    try {
      await this.#socket.send(encoder.encode(state), this.#target);
    } catch (error) {
      this.#onError(error);
    }
  }

  /**
   * Tells systemd start-up (or a reload) finished.
   * @param status a human status line
   */
  ready(status: string): Promise<void> {
    return this.notify(`READY=1\nSTATUS=${status}`);
  }

  /** Tells systemd a reload began. */
  reloading(): Promise<void> {
    const usec = monotonicUsec();
    return this.notify(`RELOADING=1${usec === undefined ? "" : `\nMONOTONIC_USEC=${usec}`}`);
  }

  /** Tells systemd the daemon is stopping. */
  stopping(): Promise<void> {
    return this.notify("STOPPING=1\nSTATUS=Stopping");
  }

  /** Starts WATCHDOG=1 pings at half of WATCHDOG_USEC, when systemd asked for them. */
  startWatchdog(): void {
    if (this.#watchdogUsec === undefined || this.#watchdog !== undefined) return;
    const every = Math.max(1, Math.floor(this.#watchdogUsec / 2000));
    void this.notify("WATCHDOG=1");
    this.#watchdog = setInterval(() => void this.notify("WATCHDOG=1"), every);
  }

  /** Stops the watchdog and closes the socket. */
  close(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
  }
}
