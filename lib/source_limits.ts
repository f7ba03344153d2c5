/**
 * Per-source limits of a listener (`max_per_source`, `rate` + `burst`,
 * `ipv6_prefix`): how many TCP connections one source may hold, and how
 * fast it may open new ones or send datagrams (a token bucket per source).
 * The excess is refused one source at a time; the service as a whole is
 * never switched off (unlike xinetd's `cps`).
 *
 * A source is an IPv4 address or an IPv6 prefix (/64 by default), so one
 * host cannot dodge the limit by rotating through its own /64. The table of
 * sources is bounded: sources with open connections are always tracked
 * (there are at most `max_connections` of them), the others are kept in
 * least-recently-seen order, expire once their bucket is full again, and
 * the oldest is evicted when the table holds {@linkcode MAX_SOURCES}. An
 * evicted source starts again with a full bucket, so a flood of spoofed
 * sources can cost a legitimate source nothing but its history.
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import type { OptionReader } from "./option_reader.ts";
import type { Transport } from "./service.ts";
import type { Rate } from "./units.ts";

/** At most this many sources are tracked per listener (besides those holding connections). */
export const MAX_SOURCES = 100_000;
/** A source's refusals are logged at most once per this many ms. */
export const SOURCE_LOG_INTERVAL_MS = 60_000;
/** At most this many refusal lines per second are logged in all. */
const LOG_LINES_PER_SECOND = 5;

/** A listener's per-source limits. */
export interface SourceLimitSettings {
  /** Concurrent TCP connections per source. */
  maxPerSource?: number;
  /** New TCP connections or UDP datagrams per source. */
  rate?: Rate;
  /** How many may come at once after a quiet spell. */
  burst: number;
  /** How many leading bits of an IPv6 address make one source. */
  ipv6Prefix: number;
}

/** Why a source was refused; the `reason` label of `switchboard_limited_total`. */
export type LimitReason = "max_per_source" | "rate";

/**
 * Reads `max_per_source`, `rate`, `burst` and `ipv6_prefix`.
 * @param reader the listener's option reader
 * @param transport the listener's transport (`max_per_source` is TCP only)
 * @returns the settings, or undefined when no limit is set
 */
export function readSourceLimits(
  reader: OptionReader,
  transport: Transport | undefined,
): SourceLimitSettings | undefined {
  if (transport === "udp" && reader.has("max_per_source")) {
    reader.problem(
      "max_per_source",
      "has no effect on a udp listener (it counts TCP connections; use rate)",
    );
  }
  const maxPerSource = reader.has("max_per_source")
    ? reader.integer("max_per_source", { default: 0, min: 1, max: 1_000_000 })
    : undefined;
  let rate: Rate | undefined;
  if (reader.has("rate")) {
    rate = reader.rate("rate", "1/s");
    if (rate.count < 1) {
      reader.problem("rate", 'must be at least 1 per period, e.g. "1/m" rather than "0.5/m"');
    }
  }
  if (reader.has("burst") && rate === undefined) {
    reader.problem("burst", "needs a rate (burst is the bucket size of rate)");
  }
  const burst = reader.integer("burst", {
    default: Math.max(1, Math.floor(rate?.count ?? 1)),
    min: 1,
    max: 1_000_000,
  });
  const ipv6Prefix = reader.integer("ipv6_prefix", { default: 64, min: 32, max: 128 });
  if (maxPerSource === undefined && rate === undefined) return undefined;
  const settings: SourceLimitSettings = { burst, ipv6Prefix };
  if (maxPerSource !== undefined && maxPerSource > 0) settings.maxPerSource = maxPerSource;
  if (rate !== undefined) settings.rate = rate;
  return settings;
}

/**
 * The source a peer counts as: the IPv4 address itself (IPv4-mapped IPv6
 * included), or the IPv6 address cut to `prefix` bits.
 *
 * @example
 * ```ts
 * import { sourceKey } from "./source_limits.ts";
 * if (sourceKey("2001:db8:1:2:aaaa::1", 64) !== sourceKey("2001:db8:1:2:bbbb::9", 64)) {
 *   throw new Error("one /64 is one source");
 * }
 * if (sourceKey("::ffff:192.0.2.1", 64) !== "192.0.2.1") throw new Error("mapped is IPv4");
 * ```
 *
 * @param host the peer's address (normalised or not)
 * @param prefix leading bits of an IPv6 address that make one source
 * @returns the key
 */
export function sourceKey(host: string, prefix: number): string {
  if (!host.includes(":")) return host;
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    address = ipaddr.parse(host.replace(/%.*$/, ""));
  } catch {
    return host;
  }
  if (address.kind() === "ipv4") return address.toString();
  const v6 = address as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  if (prefix >= 128) return v6.toString();
  const parts = v6.parts.slice();
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, prefix - i * 16));
    parts[i] = keep === 0 ? 0 : parts[i]! & (0xffff << (16 - keep)) & 0xffff;
  }
  return `${new ipaddr.IPv6(parts).toString()}/${prefix}`;
}

interface Entry {
  /** TCP connections open now. */
  active: number;
  /** Tokens in the bucket as of `last`. */
  tokens: number;
  /** When `tokens` was computed (ms). */
  last: number;
  /** When a refusal was last logged (ms). */
  loggedAt: number;
}

/** Options for {@linkcode SourceTable}. */
export interface SourceTableOptions {
  /** Most sources tracked without open connections. @default {MAX_SOURCES} */
  maxSources?: number;
}

/**
 * The per-source state of one listener. Survives a reload (the settings are
 * swapped with {@linkcode SourceTable.configure}), so connections opened
 * under the old settings still count.
 */
export class SourceTable {
  #settings: SourceLimitSettings;
  #perMs = 0;
  #refillMs = 0;
  #maxSources: number;
  #busy = new Map<string, Entry>();
  // Insertion order is least recently seen first.
  #idle = new Map<string, Entry>();
  #logTokens = LOG_LINES_PER_SECOND;
  #logLast = -Infinity;

  /**
   * @param settings the limits
   * @param options the table bound
   */
  constructor(settings: SourceLimitSettings, options: SourceTableOptions = {}) {
    this.#maxSources = options.maxSources ?? MAX_SOURCES;
    this.#settings = settings;
    this.configure(settings);
  }

  /**
   * Applies new limits; the sources and their counts stay.
   * @param settings the new limits
   */
  configure(settings: SourceLimitSettings): void {
    this.#settings = settings;
    const rate = settings.rate;
    this.#perMs = rate ? rate.count / rate.perMs : 0;
    this.#refillMs = rate ? settings.burst / this.#perMs : 0;
  }

  /** How many sources are tracked now. */
  get size(): number {
    return this.#busy.size + this.#idle.size;
  }

  /**
   * The key a peer counts under.
   * @param host the peer's address
   * @returns its source key
   */
  keyOf(host: string): string {
    return sourceKey(host, this.#settings.ipv6Prefix);
  }

  /**
   * Admits a new TCP connection from `key` (and counts it), or says why not.
   * @param key the source
   * @param now the current time in ms
   * @returns undefined when admitted, else the limit it hit
   */
  admit(key: string, now: number): LimitReason | undefined {
    const entry = this.#take(key, now);
    const max = this.#settings.maxPerSource;
    if (max !== undefined && entry.active >= max) {
      this.#put(key, entry);
      return "max_per_source";
    }
    if (!this.#spend(entry, now)) {
      this.#put(key, entry);
      return "rate";
    }
    entry.active++;
    this.#put(key, entry);
    return undefined;
  }

  /**
   * Counts the end of a connection {@linkcode SourceTable.admit} let in.
   * @param key the source
   */
  release(key: string): void {
    const entry = this.#busy.get(key);
    if (!entry) return;
    if (--entry.active > 0) return;
    this.#busy.delete(key);
    // Without a rate an idle source carries nothing worth keeping.
    if (this.#settings.rate !== undefined) this.#idle.set(key, entry);
  }

  /**
   * Takes a token for one datagram from `key`.
   * @param key the source
   * @param now the current time in ms
   * @returns true when within the rate
   */
  allowDatagram(key: string, now: number): boolean {
    if (this.#settings.rate === undefined) return true;
    const entry = this.#take(key, now);
    const allowed = this.#spend(entry, now);
    this.#put(key, entry);
    return allowed;
  }

  /**
   * Whether a refusal of `key` should be logged now: once per source per
   * {@linkcode SOURCE_LOG_INTERVAL_MS}, and a few lines a second in all.
   * @param key the source just refused
   * @param now the current time in ms
   * @returns true when a line is due
   */
  shouldLog(key: string, now: number): boolean {
    const entry = this.#busy.get(key) ?? this.#idle.get(key);
    if (entry && now - entry.loggedAt < SOURCE_LOG_INTERVAL_MS) return false;
    this.#logTokens = Math.min(
      LOG_LINES_PER_SECOND,
      this.#logTokens + Math.max(0, now - this.#logLast) * LOG_LINES_PER_SECOND / 1000,
    );
    this.#logLast = now;
    if (this.#logTokens < 1) return false;
    this.#logTokens--;
    if (entry) entry.loggedAt = now;
    return true;
  }

  #spend(entry: Entry, now: number): boolean {
    if (this.#settings.rate === undefined) return true;
    const elapsed = now - entry.last;
    if (elapsed > 0) {
      entry.tokens = Math.min(this.#settings.burst, entry.tokens + elapsed * this.#perMs);
      entry.last = now;
    }
    if (entry.tokens < 1) return false;
    entry.tokens--;
    return true;
  }

  /** Finds or creates the entry for `key`, taking it out of the idle order. */
  #take(key: string, now: number): Entry {
    const busy = this.#busy.get(key);
    if (busy) return busy;
    const idle = this.#idle.get(key);
    if (idle) {
      this.#idle.delete(key);
      return idle;
    }
    this.#makeRoom(now);
    return { active: 0, tokens: this.#settings.burst, last: now, loggedAt: -Infinity };
  }

  #put(key: string, entry: Entry): void {
    if (entry.active > 0) this.#busy.set(key, entry);
    else this.#idle.set(key, entry);
  }

  /** Drops expired idle entries (a couple per call) and, when full, the oldest one. */
  #makeRoom(now: number): void {
    for (let i = 0; i < 2; i++) {
      const first = this.#idle.entries().next();
      if (first.done) break;
      const [key, entry] = first.value;
      const refilled = this.#settings.rate === undefined || now - entry.last >= this.#refillMs;
      if (!refilled || now - entry.loggedAt < SOURCE_LOG_INTERVAL_MS) break;
      this.#idle.delete(key);
    }
    while (this.#idle.size > 0 && this.size >= this.#maxSources) {
      this.#idle.delete(this.#idle.keys().next().value!);
    }
  }
}
