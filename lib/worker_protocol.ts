/**
 * What the supervisor and its workers (`[daemon] workers`) say to each
 * other about admission, beside the channel's framing (lib/worker_channel.ts):
 * the environment variable that makes `serve` a worker, the kinds of
 * lease, the broker's keys and the shapes of the messages. It imports
 * types only, so both sides can depend on it.
 *
 * @module
 */

import type { AdmissionRequest } from "./admission.ts";

/** The environment variable that makes `serve` a worker; its value is the worker's number. */
export const WORKER_ENV = "SWITCHBOARD_INTERNAL_WORKER";

/** What a lease holds: connection slots (`max_connections`) or program slots (`max_concurrent`). */
export type LeaseKind = "connections" | "slots";

/**
 * Reads a lease kind from a message.
 * @param value the `kind` field
 * @returns the kind (connections unless it says slots)
 */
export function leaseKind(value: unknown): LeaseKind {
  return value === "slots" ? "slots" : "connections";
}

/**
 * The broker's key for a lease: the listener's name for its connections,
 * `slots:NAME` for its `max_concurrent` slots (a name holds no colon).
 * @param kind the lease's kind
 * @param listener the listener's name
 * @returns the key
 */
export function countsKey(kind: LeaseKind, listener: string): string {
  return kind === "slots" ? `slots:${listener}` : listener;
}

/** Worker → supervisor: a connection (or per-source slot) to admit; answered like {@linkcode AdmitAnswer}. */
export type AdmitMessage = { op: "admit" } & AdmissionRequest;

/** Supervisor → worker: the answer to an {@linkcode AdmitMessage}. */
export type AdmitAnswer = {
  ok: boolean;
  reason?: string;
  source?: string;
  log?: boolean;
  error?: string;
};

/** Worker → supervisor: up to `want` slots, under `max`; answered by {@linkcode LeaseAnswer}. */
export type LeaseMessage = {
  op: "lease";
  kind: LeaseKind;
  listener: string;
  max: number;
  want: number;
};

/** Supervisor → worker: how many slots were granted (none: refused). */
export type LeaseAnswer = { ok: true; granted: number } | { ok: false; reason: "max_connections" };

/** Supervisor → worker: give every spare slot of a lease back; answered by {@linkcode RevokeAnswer}. */
export type RevokeMessage = { op: "revoke"; kind: LeaseKind; listener: string };

/** Worker → supervisor: how many slots it gave up (it no longer holds them). */
export type RevokeAnswer = { ok: true; returned: number };

/** Worker → supervisor, no answer: spare slots given back. */
export type ReturnMessage = { op: "return"; kind: LeaseKind; listener: string; count: number };

/** Worker → supervisor, no answer: what an admission granted, given back. */
export type ReleaseMessage = {
  op: "release";
  listener: string;
  connection: boolean;
  source?: string;
};
