/**
 * The last log line of a TCP connection (xinetd's `log_on_success` and
 * `log_on_failure`): peer (from the logger's fields), duration, bytes in and
 * out, how it ended, and what the service noted about it — a program's exit
 * status, a relay's target.
 *
 * @module
 */

import type { LogFields, Logger } from "./log.ts";

/** How a connection ended, as the listener saw it. */
export interface ConnectionEnd {
  /** `closed`, or why it ended otherwise (`idle`, `shutdown`, `peer reset`, …). */
  outcome: string;
  /** Bytes read from the peer. */
  bytesIn: number;
  /** Bytes written to the peer. */
  bytesOut: number;
}

/** Collects what the last line says about one connection. */
export class ConnectionSummary {
  #started: number;
  #fields: LogFields = {};

  /**
   * @param started when the connection was accepted (performance.now())
   */
  constructor(started: number = performance.now()) {
    this.#started = started;
  }

  /**
   * Adds fields to the last line (later notes win). A noted `outcome`
   * replaces a plain `closed`, never the listener's own reason.
   * @param fields e.g. `{ exit: 0 }` or `{ target: "10.0.0.2:80" }`
   */
  note(fields: LogFields): void {
    Object.assign(this.#fields, fields);
  }

  /**
   * Writes the last line at info level.
   *
   * @example
   * ```ts
   * import { Logger } from "./log.ts";
   * import { ConnectionSummary } from "./connection_log.ts";
   * const lines: string[] = [];
   * const log = new Logger({ sink: (l) => lines.push(l), journal: false });
   * const summary = new ConnectionSummary();
   * summary.note({ exit: 0 });
   * summary.write(log.child({ peer: "127.0.0.1:5000" }), { outcome: "closed", bytesIn: 3, bytesOut: 5 });
   * if (!/Connection closed peer=127\.0\.0\.1:5000 ms=\d+ in=3 out=5 outcome=closed exit=0/.test(lines[0]!)) {
   *   throw new Error(lines[0]);
   * }
   * ```
   *
   * @param log the connection's logger (carrying listener and peer)
   * @param end how it ended and the byte counts
   */
  write(log: Logger, end: ConnectionEnd): void {
    const { outcome: noted, ...rest } = this.#fields;
    log.info("Connection closed", {
      ms: Math.round(performance.now() - this.#started),
      in: end.bytesIn,
      out: end.bytesOut,
      outcome: end.outcome === "closed" && noted !== undefined ? noted : end.outcome,
      ...rest,
    });
  }
}
