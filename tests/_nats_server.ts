/**
 * A real `nats-server` (Debian package `nats-server`, installed by
 * scripts/install_test_tools.sh) for the tests that need a bus: each test
 * starts its own on a free loopback port and stops it by its PID.
 *
 * @module
 */

/** Options for {@linkcode startNatsServer}. */
export interface NatsServerOptions {
  /** The port to listen on. @default {a free port} */
  port?: number;
  /** A config file's text (written to a temp file and passed with `-c`). */
  config?: string;
  /** Extra command-line arguments (e.g. `["--user", "u", "--pass", "p"]`). */
  args?: string[];
}

/** A running nats-server. */
export interface NatsServer extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its PID, while it runs. */
  readonly pid: number;
  /** Stops it with SIGTERM and waits for it to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Kills it with SIGKILL (a crash) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same settings. */
  restart(): Promise<void>;
}

// Below the kernel's ephemeral range (32768–60999 here), so no socket bound
// to port 0 elsewhere in a parallel test run can take a bus's port, not even
// while a test has killed its server and is about to restart it there.
const PORT_RANGE = [20_000, 32_000] as const;

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, chosen at random
 * below the ephemeral range (see above).
 * @returns the port
 * @throws {Error} when no free port was found in 200 tries
 */
export function freePort(): number {
  const [low, high] = PORT_RANGE;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  throw new Error(`No free port in ${low}..${high}`);
}

async function reachable(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

// Debian installs it in /usr/sbin, which not every PATH has.
function natsServerPath(): string {
  try {
    Deno.statSync("/usr/sbin/nats-server");
    return "/usr/sbin/nats-server";
  } catch {
    return "nats-server";
  }
}

async function spawn(port: number, configPath: string | undefined, args: string[]) {
  const command = new Deno.Command(natsServerPath(), {
    args: [
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      ...(configPath ? ["-c", configPath] : []),
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  });
  const child = command.spawn();
  const log: string[] = [];
  const pump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) log.push(decoder.decode(chunk));
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const deadline = performance.now() + 10_000;
  while (!(await reachable(port))) {
    if (exited || performance.now() > deadline) {
      if (!exited) child.kill("SIGKILL");
      await status;
      await pump;
      throw new Error(`nats-server did not start on port ${port}:\n${log.join("")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { child, status, pump };
}

/**
 * Starts a nats-server on 127.0.0.1 and waits until it accepts connections.
 * @param options port, config text, extra arguments
 * @returns the running server; dispose it (or stop it) to end it
 * @throws {Error} when it does not start within 10 s
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  let configPath: string | undefined;
  if (options.config !== undefined) {
    configPath = await Deno.makeTempFile({ suffix: ".conf" });
    await Deno.writeTextFile(configPath, options.config);
  }
  const args = options.args ?? [];
  let port = options.port ?? freePort();
  let running: Awaited<ReturnType<typeof spawn>> | undefined;
  for (let attempt = 0; running === undefined; attempt++) {
    try {
      running = await spawn(port, configPath, args);
    } catch (error) {
      // The free port may have been taken meanwhile; try another.
      if (options.port !== undefined || attempt >= 2) throw error;
      port = freePort();
    }
  }
  let current: Awaited<ReturnType<typeof spawn>> | undefined = running;
  const end = async (signal: Deno.Signal): Promise<void> => {
    const it = current;
    if (it === undefined) return;
    current = undefined;
    try {
      it.child.kill(signal);
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        it.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5000);
    await it.status;
    clearTimeout(timer);
    await it.pump;
  };
  const server: NatsServer = {
    port,
    url: `nats://127.0.0.1:${port}`,
    get pid(): number {
      if (current === undefined) throw new Error("nats-server is not running");
      return current.child.pid;
    },
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
    async restart(): Promise<void> {
      await end("SIGTERM");
      current = await spawn(port, configPath, args);
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await end("SIGTERM");
      if (configPath) await Deno.remove(configPath).catch(() => {});
    },
  };
  return server;
}
