/**
 * One daemon's connection to a chat room's NATS subject: it dials, subscribes,
 * publishes, and when the connection is lost it dials again with exponential
 * back-off (100 ms doubling, capped at 5 s, with jitter), for as long as the
 * room lives. The client's own reconnect is off: it would replay what was
 * published while the link was down, and here such messages are local only.
 * A server that cannot be reached at start is just a link that is down: the
 * room works locally meanwhile.
 *
 * @module
 */

import {
  type Authenticator,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import type { BusAuth, BusOptions } from "./bus_options.ts";
import type { Link } from "../../lib/link_board.ts";
import type { Logger } from "../../lib/log.ts";
import { ignoreStraySocketErrors } from "../../lib/stray_socket_errors.ts";
import { formatDuration } from "../../lib/units.ts";

/** The longest wait between two attempts to reach the bus, in ms. */
export const MAX_BACKOFF_MS = 5000;
const FIRST_BACKOFF_MS = 100;
/** A dial (TCP connect, INFO, CONNECT, first PONG) that takes longer has failed. */
const DIAL_TIMEOUT_MS = 2000;
/** Pings the server this often; two unanswered pings mean the link is lost. */
const PING_MS = 2000;
/** While the bus stays unreachable, a reminder is logged this often. */
const REMIND_MS = 60_000;

/** Options for {@linkcode BusLink}. */
export interface BusLinkOptions {
  /** Where the bus is and how to log in. */
  bus: BusOptions;
  /** The subject to publish and subscribe on. */
  subject: string;
  /** The connection's name, as the server's monitoring shows it. */
  clientName: string;
  /** What the link is for, in log lines, e.g. `chat room "lobby"`. */
  what: string;
  /** For state changes (never with credentials). */
  log: Logger;
  /** The link's entry on the supervisor's board (state and counters). */
  link: Link;
  /** Gets every message on the subject (not the link's own). */
  onMessage(data: Uint8Array): void;
  /** The link is up: subscribed and flushed. */
  onUp(): void;
  /** The link is down: it was up and is lost, or the first attempt at all failed. */
  onDown(): void;
}

/**
 * The delay before attempt `n` (0-based) after a failure or loss: 100 ms,
 * 200, 400 … never above {@linkcode MAX_BACKOFF_MS}, less up to 20% jitter so
 * daemons that lost one server do not all dial it at once.
 * @param attempt how many attempts failed in a row before this one
 * @param random a number in [0, 1) @default {Math.random()}
 * @returns milliseconds
 */
export function backoffMs(attempt: number, random: number = Math.random()): number {
  const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(attempt, 16));
  return Math.round(base * (1 - 0.2 * random));
}

function authenticator(auth: BusAuth): Authenticator | undefined {
  switch (auth.kind) {
    case "none":
      return undefined;
    case "password":
      return usernamePasswordAuthenticator(auth.user, auth.pass);
    case "token":
      return tokenAuthenticator(auth.token);
    case "creds":
      return credsAuthenticator(new TextEncoder().encode(auth.text));
    case "nkey":
      return nkeyAuthenticator(new TextEncoder().encode(auth.seed));
  }
}

function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) {
    return error === undefined ? "the server closed the connection" : String(error);
  }
  // The client's messages name the server (host:port), never credentials.
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`.replace(/\s+/g, " ").slice(0, 200);
}

/** A daemon's link to a room's subject, kept up until closed. */
export class BusLink {
  #options: BusLinkOptions;
  #authenticator: Authenticator | undefined;
  #connection?: NatsConnection;
  #closed = false;
  #wake?: () => void;
  /** Messages that arrive before the link is reported up wait here (in order). */
  #early?: Uint8Array[];
  #running: Promise<void>;
  #unguard: () => void;

  /**
   * Starts dialling at once (in the background).
   * @param options bus, subject, logger, board entry and callbacks
   */
  constructor(options: BusLinkOptions) {
    this.#options = options;
    this.#authenticator = authenticator(options.bus.auth);
    // The NATS client drops its socket listeners before a refused login's
    // reset arrives; that reset must not end the daemon.
    this.#unguard = ignoreStraySocketErrors((error) =>
      options.log.debug(`Bus socket error after the client let go: ${error.message}`)
    );
    this.#running = this.#run();
  }

  /** Whether messages published now reach the bus. */
  get up(): boolean {
    return this.#connection !== undefined;
  }

  /**
   * Publishes one message when the link is up; drops it when it is down
   * (it is not kept for later: the room delivered it locally).
   * @param data the message (not changed afterwards by the caller)
   * @returns whether it was handed to the connection
   */
  publish(data: Uint8Array): boolean {
    const connection = this.#connection;
    if (connection === undefined) return false;
    try {
      connection.publish(this.#options.subject, data);
    } catch {
      // Closing under our feet: the loop notices.
      return false;
    }
    this.#options.link.sent++;
    return true;
  }

  /** Flushes what was published (before a goodbye), then closes for good. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    const connection = this.#connection;
    if (connection) {
      // Deliver what was published (a "bye") before closing; bounded.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        connection.flush().catch(() => {}),
        new Promise<void>((resolve) => timer = setTimeout(resolve, 1000)),
      ]);
      clearTimeout(timer);
      await connection.close().catch(() => {});
    }
    await this.#running;
    this.#unguard();
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#closed) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wake = undefined;
  }

  async #dial(): Promise<NatsConnection> {
    this.#early = [];
    const connection = await connect({
      servers: this.#options.bus.server,
      name: this.#options.clientName,
      reconnect: false,
      noEcho: true,
      timeout: DIAL_TIMEOUT_MS,
      pingInterval: PING_MS,
      maxPingOut: 2,
      ignoreClusterUpdates: true,
      authenticator: this.#authenticator,
    });
    try {
      connection.subscribe(this.#options.subject, {
        callback: (error, message) => {
          if (error) return;
          this.#options.link.received++;
          if (this.#early) this.#early.push(message.data.slice());
          else this.#options.onMessage(message.data);
        },
      });
      // The subscription is in place on the server before the link counts as up.
      await connection.flush();
      return connection;
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
  }

  async #run(): Promise<void> {
    const { log, link, what } = this.#options;
    const target = this.#options.bus.target;
    let failures = 0;
    let downSince = performance.now();
    let remindAt = 0;
    let everUp = false;
    while (!this.#closed) {
      let connection: NatsConnection;
      try {
        connection = await this.#dial();
      } catch (error) {
        if (this.#closed) break;
        link.failedAttempt();
        const wait = backoffMs(failures++);
        const now = performance.now();
        const fields = { bus: target, attempts: failures, retry_in_ms: wait };
        if (failures === 1 || now >= remindAt) {
          remindAt = now + REMIND_MS;
          const first = everUp ? "cannot reconnect" : "cannot reach the bus";
          log.warn(`Chat ${what}: ${first}: ${reasonOf(error)}; retrying`, fields);
        } else {
          log.debug(`Chat ${what}: bus still unreachable: ${reasonOf(error)}`, fields);
        }
        if (!everUp && failures === 1) this.#options.onDown();
        await this.#sleep(wait);
        continue;
      }
      if (this.#closed) {
        await connection.close().catch(() => {});
        break;
      }
      this.#connection = connection;
      const info = connection.info;
      const server = info ? `nats-server ${info.version}` : "nats-server";
      if (everUp) {
        const downMs = Math.round(performance.now() - downSince);
        log.info(`Chat ${what}: link to the bus is back`, {
          bus: target,
          server,
          down_for: formatDuration(downMs),
          attempts: failures + 1,
        });
      } else {
        log.info(`Chat ${what}: linked to the bus`, { bus: target, server });
      }
      everUp = true;
      failures = 0;
      link.markUp();
      // The room hears that the link is up before anything that came over it.
      this.#options.onUp();
      const early = this.#early ?? [];
      this.#early = undefined;
      for (const data of early) this.#options.onMessage(data);
      const ended = await connection.closed();
      this.#connection = undefined;
      link.markDown();
      if (this.#closed) break;
      downSince = performance.now();
      remindAt = downSince + REMIND_MS;
      const wait = backoffMs(failures++);
      log.warn(`Chat ${what}: link to the bus is down: ${reasonOf(ended)}; reconnecting`, {
        bus: target,
        retry_in_ms: wait,
      });
      this.#options.onDown();
      await this.#sleep(wait);
    }
    this.#connection = undefined;
  }
}
