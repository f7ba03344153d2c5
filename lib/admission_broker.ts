/**
 * The supervisor's side of admission with `[daemon] workers`: the one count
 * of every listener's connections (`max_connections`), its per-source table
 * (`max_per_source`, `rate`) and, under `slots:NAME`, its `max_concurrent`
 * slots. Workers ask
 * before each connection or program and give back when it ends, so the
 * limits hold across all workers exactly as configured. What each worker
 * holds is remembered, and given back at once when the worker dies.
 *
 * Connection slots without per-source limits, and program slots, are leased in blocks: a
 * worker serves from its lease without asking and asks again when it is
 * used up. A worker's spare slots count as taken here, so before the
 * supervisor refuses a connection it revokes every worker's spare slots
 * (granting one slot at a time meanwhile): a refusal means the listener
 * really holds `max_connections` connections.
 *
 * @module
 */

import type { AdmissionRequest, RefusalReason } from "./admission.ts";
import { SourceTable } from "./source_limits.ts";

/** The broker's answer to an admission request. */
export interface BrokerAnswer {
  /** Whether admitted. */
  ok: boolean;
  /** Refused: why. */
  reason?: RefusalReason;
  /** The source it counts under (or was refused as). */
  source?: string;
  /** Refused: whether a log line is due. */
  log?: boolean;
}

interface Holding {
  connections: number;
  sources: Map<string, number>;
}

interface Counts {
  /** Slots taken or leased, across workers. */
  connections: number;
  /** Revocations in progress: leases are one slot, used at once. */
  revoking: number;
  table?: SourceTable;
  limits?: string;
  held: Map<number, Holding>;
}

/** Counts of every listener served by workers, and what each worker holds. */
export class AdmissionBroker {
  #listeners = new Map<string, Counts>();
  #clock: () => number;

  /**
   * @param clock monotonic ms for the rate buckets @default {performance.now}
   */
  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
  }

  #counts(listener: string): Counts {
    let counts = this.#listeners.get(listener);
    if (!counts) {
      counts = { connections: 0, revoking: 0, held: new Map() };
      this.#listeners.set(listener, counts);
    }
    return counts;
  }

  #holding(counts: Counts, worker: number): Holding {
    let holding = counts.held.get(worker);
    if (!holding) {
      holding = { connections: 0, sources: new Map() };
      counts.held.set(worker, holding);
    }
    return holding;
  }

  /**
   * Admits a connection of `worker` (and counts it), or says why not. The
   * order is the listener's own: `max_connections` first, then the source.
   * @param worker the asking worker's number
   * @param request what it asks
   * @returns the answer
   */
  admit(worker: number, request: AdmissionRequest): BrokerAnswer {
    const counts = this.#counts(request.listener);
    if (request.connection && counts.connections >= request.maxConnections) {
      return { ok: false, reason: "max_connections" };
    }
    let source: string | undefined;
    if (request.host !== undefined && request.limits) {
      const limits = JSON.stringify(request.limits);
      if (!counts.table) counts.table = new SourceTable(request.limits);
      else if (counts.limits !== limits) counts.table.configure(request.limits);
      counts.limits = limits;
      source = counts.table.keyOf(request.host);
      const now = this.#clock();
      const reason = counts.table.admit(source, now);
      if (reason !== undefined) {
        return { ok: false, reason, source, log: counts.table.shouldLog(source, now) };
      }
    }
    const holding = this.#holding(counts, worker);
    if (request.connection) {
      counts.connections++;
      holding.connections++;
    }
    if (source !== undefined) holding.sources.set(source, (holding.sources.get(source) ?? 0) + 1);
    return source === undefined ? { ok: true } : { ok: true, source };
  }

  /**
   * Leases connection slots to `worker`: up to `want` while the listener is
   * far from `max`, one near it or while spare slots are being revoked.
   * @param worker the worker's number
   * @param request the listener, its `max_connections`, and how many are wanted
   * @returns how many were granted (0: none is free)
   */
  lease(worker: number, request: { listener: string; max: number; want: number }): number {
    const counts = this.#counts(request.listener);
    const room = request.max - counts.connections;
    if (room <= 0) return 0;
    const granted = counts.revoking > 0
      ? 1
      : Math.max(1, Math.min(request.want, Math.floor(room / 4)));
    counts.connections += granted;
    this.#holding(counts, worker).connections += granted;
    return granted;
  }

  /**
   * Takes back connection slots `worker` leased and no longer needs.
   * @param worker the worker's number
   * @param listener the listener's name
   * @param count how many
   */
  giveBack(worker: number, listener: string, count: number): void {
    const counts = this.#listeners.get(listener);
    const holding = counts?.held.get(worker);
    if (!counts || !holding) return;
    const n = Math.max(0, Math.min(count, holding.connections));
    holding.connections -= n;
    counts.connections -= n;
  }

  /**
   * Marks a revocation of spare slots as begun or ended (while any runs,
   * leases are single slots).
   * @param listener the listener's name
   * @param running true when it begins
   */
  revoking(listener: string, running: boolean): void {
    this.#counts(listener).revoking += running ? 1 : -1;
  }

  /**
   * The workers holding connection slots of a listener.
   * @param listener the listener's name
   * @returns their numbers
   */
  holders(listener: string): number[] {
    const counts = this.#listeners.get(listener);
    if (!counts) return [];
    return [...counts.held].filter(([, h]) => h.connections > 0).map(([worker]) => worker);
  }

  /**
   * Gives back what {@linkcode AdmissionBroker.admit} granted.
   * @param worker the worker's number
   * @param release which listener, whether a connection slot, and the source
   */
  release(
    worker: number,
    release: { listener: string; connection: boolean; source?: string },
  ): void {
    const counts = this.#listeners.get(release.listener);
    const holding = counts?.held.get(worker);
    if (!counts || !holding) return;
    if (release.connection && holding.connections > 0) {
      holding.connections--;
      counts.connections--;
    }
    const source = release.source;
    const held = source === undefined ? 0 : holding.sources.get(source) ?? 0;
    if (source !== undefined && held > 0) {
      if (held === 1) holding.sources.delete(source);
      else holding.sources.set(source, held - 1);
      counts.table?.release(source);
    }
  }

  /**
   * Gives back everything `worker` holds (it exited).
   * @param worker the worker's number
   */
  forget(worker: number): void {
    for (const [listener, counts] of this.#listeners) {
      const holding = counts.held.get(worker);
      if (!holding) continue;
      counts.held.delete(worker);
      counts.connections -= holding.connections;
      for (const [source, n] of holding.sources) {
        for (let i = 0; i < n; i++) counts.table?.release(source);
      }
      if (
        counts.connections === 0 && !counts.table && counts.revoking === 0
      ) {
        this.#listeners.delete(listener);
      }
    }
  }

  /**
   * How many sources a listener's per-source table tracks (for metrics).
   * @param listener the listener's name
   * @returns the count (0 without limits)
   */
  sources(listener: string): number {
    return this.#listeners.get(listener)?.table?.size ?? 0;
  }

  /**
   * The slots a listener holds now, taken or leased, across workers (for tests).
   * @param listener the listener's name (`slots:NAME` for its program slots)
   * @returns the count
   */
  held(listener: string): number {
    return this.#listeners.get(listener)?.connections ?? 0;
  }
}
