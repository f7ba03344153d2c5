/**
 * The redirect service: a TCP relay to `target = "host:port"` (xinetd's
 * `redirect`, rinetd, `socat TCP-LISTEN … TCP:…`). Each connection opens
 * one to the target within `connect_timeout`; bytes flow both ways with
 * back-pressure and half-closes are passed on (see `relay.ts`). A target
 * that refuses, cannot be reached or does not answer in time gets the
 * client closed at once and a log line. Bytes each way are the
 * connection's bytes in and out: in metrics and its last log line.
 *
 * @module
 */

import { addressesOverlap, formatHostPort } from "../../lib/address.ts";
import { LogThrottle } from "../../lib/log_throttle.ts";
import { describeError, isDisconnect } from "../../lib/net_errors.ts";
import {
  type Connection,
  type ConnectionContext,
  defineService,
  type Service,
} from "../../lib/service.ts";
import { formatDuration } from "../../lib/units.ts";
import { relay } from "./relay.ts";
import { parseTarget, type Target } from "./target.ts";

/** Options of a redirect listener. */
export interface RedirectOptions {
  /** Where connections are relayed to. */
  target: Target;
  /** The target as written, for logs and `check`. */
  targetText: string;
  /** How long connecting to the target may take (name lookup included), in ms. */
  connectTimeoutMs: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Per-listener state of an opened redirect service. */
interface RedirectState {
  options: RedirectOptions;
  /** Throttles the line about an unreachable target (a flood of clients, one line a second). */
  failures: LogThrottle;
}

class ConnectTimeout extends Error {}

/**
 * Connects to the target, giving up after `timeoutMs` or when `closing` aborts.
 * @throws {ConnectTimeout} on timeout; connect errors otherwise
 */
async function connectTarget(
  target: Target,
  timeoutMs: number,
  closing: AbortSignal,
): Promise<Deno.TcpConn> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const stop = (): void => controller.abort();
  closing.addEventListener("abort", stop, { once: true });
  try {
    return await Deno.connect({
      hostname: target.hostname,
      port: target.port,
      signal: controller.signal,
    });
  } catch (error) {
    throw timedOut ? new ConnectTimeout() : error;
  } finally {
    clearTimeout(timer);
    closing.removeEventListener("abort", stop);
  }
}

function failureOutcome(error: unknown): string {
  if (error instanceof ConnectTimeout) return "target timeout";
  if (error instanceof Deno.errors.ConnectionRefused) return "target refused";
  return "target unreachable";
}

/**
 * Serves one connection: connects to the target and relays until both
 * directions end.
 * @param conn the client's connection
 * @param context busy marking, last-line notes, closing signal
 * @param state the listener's options and failure throttle
 */
async function serveRedirect(
  conn: Connection,
  context: ConnectionContext,
  state: RedirectState,
): Promise<void> {
  const { options } = state;
  context.note({ target: options.targetText });
  let target: Deno.TcpConn;
  try {
    target = await connectTarget(options.target, options.connectTimeoutMs, context.closing);
  } catch (error) {
    if (context.closing.aborted) return;
    const outcome = failureOutcome(error);
    context.note({ outcome });
    const count = state.failures.hit(performance.now());
    if (count > 0) {
      const why = error instanceof ConnectTimeout
        ? `no answer within connect_timeout (${formatDuration(options.connectTimeoutMs)})`
        : describeError(error);
      context.log.warn(`Cannot reach target ${options.targetText}: ${why}`, { count });
    }
    return;
  }
  try {
    target.setNoDelay(true);
    target.setKeepAlive(true);
  } catch {
    // The target may be gone already; the relay finds out.
  }
  const end = await relay(conn, target, context);
  if (end.complete) return;
  if (!isDisconnect(end.error)) {
    context.log.warn(`Relay to ${options.targetText} failed: ${describeError(end.error)}`);
  }
  context.note({ outcome: `${end.failed} reset` });
}

/** The redirect service's entry in the service table. */
export const redirectService: Service = defineService<RedirectOptions>({
  name: "redirect",
  transports: ["tcp"],
  defaultPort: 7011,
  parseOptions(reader, _transport, address) {
    const targetText = reader.string("target", { required: true });
    let target: Target = { hostname: "", port: 0, literal: false };
    if (targetText !== undefined) {
      try {
        target = parseTarget(targetText);
        const own = { hostname: target.hostname, port: target.port, scope: "one" as const };
        if (target.literal && address && addressesOverlap(address, own)) {
          reader.problem(
            "target",
            `${formatHostPort(target.hostname, target.port)} is this listener's own address: ` +
              `every connection would loop back to it`,
          );
        }
      } catch (error) {
        reader.problem("target", (error as Error).message);
      }
    }
    const connectTimeoutMs = reader.duration("connect_timeout", {
      default: "5s",
      min: 1,
      max: MAX_TIMER_MS,
    });
    return { target, targetText: targetText ?? "", connectTimeoutMs };
  },
  describe: (options) =>
    `target=${options.targetText} connect_timeout=${formatDuration(options.connectTimeoutMs)}`,
  open: (options) => {
    const state: RedirectState = { options, failures: new LogThrottle() };
    return { stream: (conn, context) => serveRedirect(conn, context, state) };
  },
});
