/**
 * A worker's side of admission with `[daemon] workers`: every question goes
 * to the supervisor (lib/admission_broker.ts) over the worker channel,
 * except connection slots without per-source limits and `max_concurrent`
 * slots, served from leased blocks.
 *
 * @module
 */

import type { AdmissionAnswer, AdmissionGate, AdmissionRequest } from "./admission.ts";
import type { SlotCounter } from "./command_slots.ts";
import { once } from "./once.ts";
import type { LineChannel } from "./worker_channel.ts";
import type {
  AdmitMessage,
  LeaseKind,
  LeaseMessage,
  ReleaseMessage,
  ReturnMessage,
} from "./worker_protocol.ts";

/** Slots (connections or programs) a worker leased from the supervisor for one listener. */
interface Lease {
  /** Slots leased and not given back. */
  granted: number;
  /** Of those, the ones serving a connection now. */
  used: number;
  /** The `max_connections` or `max_concurrent` they were leased under. */
  max: number;
}

/** How many slots a worker asks for at once (the supervisor may grant fewer). */
const LEASE_BLOCK = 16;

/**
 * The worker's side of admission: every question goes to the supervisor,
 * except connection slots without per-source limits and `max_concurrent`
 * slots, served from leases.
 */
export class BrokerClient implements AdmissionGate {
  #link: () => LineChannel;
  #slots = new Map<string, SlotCounter>();
  #leases = new Map<string, Lease>();

  /**
   * @param link the channel to the supervisor (read at each use: it is made after this)
   */
  constructor(link: () => LineChannel) {
    this.#link = link;
  }

  get #channel(): LineChannel {
    return this.#link();
  }

  /**
   * Takes a connection slot and/or a per-source slot, or says why not.
   * @param request what the listener asks
   * @returns the answer
   * @throws {Error} when the supervisor is gone or gives no answer
   */
  admit(request: AdmissionRequest): Promise<AdmissionAnswer> {
    const leased = request.connection && (request.host === undefined || !request.limits);
    if (!leased) {
      // Per-source limits now (a reload added them): spare leased slots go back.
      if (request.connection) this.#giveBackSpare("connections", request.listener);
      return this.#ask(request);
    }
    return this.#fromLease("connections", request.listener, request.maxConnections).then((
      release,
    ) =>
      release
        ? { admitted: true, release }
        : { admitted: false, reason: "max_connections", log: true }
    );
  }

  /** Takes a slot from the lease of `kind` for `listener`, asking for more when it is used up. */
  async #fromLease(
    kind: LeaseKind,
    listener: string,
    max: number,
  ): Promise<(() => void) | undefined> {
    const key = `${kind}:${listener}`;
    let lease = this.#leases.get(key);
    if (!lease) {
      lease = { granted: 0, used: 0, max };
      this.#leases.set(key, lease);
    }
    if (lease.max !== max) {
      // Reloaded with another limit: spare slots go back.
      this.#giveBack(kind, listener, lease, lease.granted - lease.used);
      lease.max = max;
    }
    if (lease.granted === lease.used) {
      const answer = await this.#channel.request(
        { op: "lease", kind, listener, max, want: LEASE_BLOCK } satisfies LeaseMessage,
      );
      if (answer.ok !== true) return undefined;
      lease.granted += Number(answer.granted) || 0;
      if (lease.granted === lease.used) return undefined;
    }
    lease.used++;
    const held = lease;
    return once(() => {
      held.used--;
      const spare = held.granted - held.used;
      if (spare > 2 * LEASE_BLOCK) this.#giveBack(kind, listener, held, spare - LEASE_BLOCK);
    });
  }

  #giveBackSpare(kind: LeaseKind, listener: string): void {
    const lease = this.#leases.get(`${kind}:${listener}`);
    if (lease) this.#giveBack(kind, listener, lease, lease.granted - lease.used);
  }

  #giveBack(kind: LeaseKind, listener: string, lease: Lease, count: number): void {
    if (count <= 0) return;
    lease.granted -= count;
    this.#channel.send({ op: "return", kind, listener, count } satisfies ReturnMessage);
  }

  /**
   * Gives every spare slot of a lease back (the supervisor needs them).
   * @param kind the lease's kind
   * @param listener the listener's name
   * @returns how many (the caller tells the supervisor)
   */
  revoke(kind: LeaseKind, listener: string): number {
    const lease = this.#leases.get(`${kind}:${listener}`);
    if (!lease) return 0;
    const spare = lease.granted - lease.used;
    lease.granted = lease.used;
    return spare;
  }

  async #ask(request: AdmissionRequest): Promise<AdmissionAnswer> {
    const answer = await this.#channel.request({ op: "admit", ...request } satisfies AdmitMessage);
    const source = typeof answer.source === "string" ? answer.source : undefined;
    if (answer.ok !== true) {
      if (typeof answer.reason !== "string") {
        throw new Error(`The supervisor did not answer: ${String(answer.error ?? "no reason")}`);
      }
      return {
        admitted: false,
        reason: answer.reason as "max_connections",
        source,
        log: answer.log === true,
      };
    }
    const release: ReleaseMessage = {
      op: "release",
      listener: request.listener,
      connection: request.connection,
      source,
    };
    return { admitted: true, source, release: once(() => this.#channel.send({ ...release })) };
  }

  /**
   * The `max_concurrent` counter of a listener, served from leases.
   * @param listener the listener's name
   * @returns the counter (one per listener, kept across reloads)
   */
  slots(listener: string): SlotCounter {
    let counter = this.#slots.get(listener);
    if (counter) return counter;
    const made: SlotCounter = {
      running: 0,
      acquire: async (max) => {
        const release = await this.#fromLease("slots", listener, max);
        if (!release) return undefined;
        made.running++;
        return once(() => {
          made.running--;
          release();
        });
      },
    };
    this.#slots.set(listener, made);
    counter = made;
    return counter;
  }
}
