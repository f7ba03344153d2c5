/**
 * The admission seam of a TCP listener: where `max_connections` and the
 * per-source limits (`max_per_source`, `rate`) are decided when several
 * processes share one listener (`[daemon] workers`). Alone, a listener
 * counts for itself; a worker asks the supervisor, which holds the one
 * count of every listener, so the limits hold across workers exactly as
 * configured.
 *
 * @module
 */

import type { LimitReason, SourceLimitSettings } from "./source_limits.ts";

/** What a listener asks before it serves a connection. */
export interface AdmissionRequest {
  /** The listener's name. */
  listener: string;
  /** Whether to take one of `max_connections` (false: the per-source limits only). */
  connection: boolean;
  /** The listener's `max_connections`. */
  maxConnections: number;
  /** The client's address, for the per-source limits (absent: they are not checked). */
  host?: string;
  /** The listener's per-source limits, if any. */
  limits?: SourceLimitSettings;
}

/** Why a connection was refused: `max_connections` or a per-source limit. */
export type RefusalReason = "max_connections" | LimitReason;

/** The answer to an {@linkcode AdmissionRequest}. */
export type AdmissionAnswer =
  | {
    /** Admitted: the connection counts until `release` is called. */
    admitted: true;
    /** The source it counts under, when the per-source limits were checked. */
    source?: string;
    /** Gives back what was taken (idempotent). */
    release: () => void;
  }
  | {
    /** Refused. */
    admitted: false;
    /** Which limit. */
    reason: RefusalReason;
    /** The source refused, for a per-source limit. */
    source?: string;
    /** Whether this refusal is due a log line (refusals of one source are throttled). */
    log: boolean;
  };

/** Decides admissions for listeners whose counts live elsewhere. */
export interface AdmissionGate {
  /**
   * Takes a connection slot and/or a per-source slot, or says why not.
   * @throws {Error} when the one deciding is gone (the connection is then closed)
   */
  admit(request: AdmissionRequest): Promise<AdmissionAnswer>;
}
