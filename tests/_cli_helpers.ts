/**
 * CLI test helpers beyond `runCli`: a run whose standard output is closed
 * by its reader before the verb writes (as `| head -1` does), and one
 * server with a listener of every service for the client verbs.
 *
 * @module
 */

import { listenerToml, MAIN, ROOT, startServer, type TestServer } from "./_helpers.ts";

/** What a run with a closed stdout produced. */
export interface ClosedStdoutResult {
  /** Exit code. */
  code: number;
  /** Standard error as text. */
  stderr: string;
}

/**
 * Runs `main.ts` with stdout a pipe whose reading end is closed at once,
 * before the program has started (so its first write meets a closed pipe).
 * @param args the command line
 * @param options stdin text, environment, time limit
 * @returns the exit code and stderr
 */
export async function runCliClosedStdout(
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ClosedStdoutResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdout.cancel();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
    await writer.close().catch(() => {});
  }
  const stderr = await new Response(child.stderr).text();
  const status = await child.status;
  clearTimeout(timer);
  return { code: status.code, stderr };
}

/**
 * A port nothing listens on (bound and released at once).
 * @returns the port
 */
export function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

/** Listener names of {@linkcode startEveryService}, by what they are. */
export const EVERY_SERVICE = {
  echoTcp: "echo-tcp",
  echoUdp: "echo-udp",
  chatUdp: "chat-udp",
  chatTcp: "chat-tcp",
  cmd: "cmd",
  cmdLine: "cmd-line",
  timeUdp: "time-udp",
  timeTcp: "time-tcp",
  rfc868Udp: "rfc868-udp",
  rfc868Tcp: "rfc868-tcp",
  file: "file",
} as const;

/**
 * Starts one server with a listener of every service on 127.0.0.1 port 0
 * (cmd without a token, as loopback allows; file on `root`).
 * @param root the file listener's root directory
 * @returns the server; dispose it with `await using`
 */
export function startEveryService(root: string): Promise<TestServer> {
  const n = EVERY_SERVICE;
  const at = "127.0.0.1:0";
  return startServer([
    listenerToml({ name: n.echoTcp, service: "echo", listen: at }),
    listenerToml({ name: n.echoUdp, service: "echo", transport: "udp", listen: at }),
    listenerToml({ name: n.chatUdp, service: "chat", listen: at, room: "r" }),
    listenerToml({ name: n.chatTcp, service: "chat", transport: "tcp", listen: at, room: "r" }),
    listenerToml({ name: n.cmd, service: "cmd", listen: at, auth: "none" }),
    listenerToml({
      name: n.cmdLine,
      service: "cmd",
      listen: at,
      auth: "none",
      protocol: "line",
      idle_timeout: "1s",
    }),
    listenerToml({ name: n.timeUdp, service: "time", listen: at }),
    listenerToml({ name: n.timeTcp, service: "time", transport: "tcp", listen: at }),
    listenerToml({ name: n.rfc868Udp, service: "time", listen: at, mode: "rfc868" }),
    listenerToml({
      name: n.rfc868Tcp,
      service: "time",
      transport: "tcp",
      listen: at,
      mode: "rfc868",
    }),
    listenerToml({ name: n.file, service: "file", listen: at, root }),
  ].join("\n"));
}
