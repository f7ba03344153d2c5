/**
 * Parses and validates switchboard's TOML config into typed objects,
 * reporting every problem at once with file, key path and line.
 *
 * @module
 */

import { parse as parseToml, TomlError } from "smol-toml";
import { dirname, resolve } from "node:path";
import {
  addressesOverlap,
  formatHostPort,
  type ListenAddress,
  parseListenAddress,
} from "./address.ts";
import { parseCidr } from "./access.ts";
import { readAccessTimes } from "./access_times.ts";
import { readBanner } from "./banner.ts";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";
import { type ConfigProblem, formatProblem, OptionReader } from "./option_reader.ts";
import { readProxyPeers } from "./proxy_trust.ts";
import type { Service, Transport } from "./service.ts";
import { isFdListen, parseFdListen } from "./socket_activation.ts";
import { readSourceLimits, type SourceLimitSettings } from "./source_limits.ts";
import { readTlsSettings, type TlsSettings } from "./tls_config.ts";
import { locateKeys } from "./toml_locate.ts";

/** The `[daemon]` table. */
export interface DaemonConfig {
  /** Least severe level logged. */
  logLevel: LogLevel;
  /** Log line format. */
  logFormat: LogFormat;
  /** How long a graceful stop waits for work in flight, in ms. */
  shutdownTimeoutMs: number;
  /** Where to serve `/metrics` and `/healthz` over HTTP, if anywhere. */
  metrics?: ListenAddress;
  /**
   * Processes serving the TCP listeners (`workers`): 1 is the daemon alone;
   * more, or `"auto"` (one per available core), run worker processes that
   * share each port (lib/worker_pool.ts).
   */
  workers?: number | "auto";
}

/** One `[[listener]]`, validated. */
export interface ListenerConfig {
  /** Unique name, used in logs. */
  name: string;
  /** The service's name. */
  service: string;
  /** The socket type. */
  transport: Transport;
  /** The `listen` value as written. */
  listen: string;
  /** The parsed listen address. */
  address: ListenAddress;
  /** Whether the listener runs. */
  enabled: boolean;
  /** TCP: most simultaneous connections; the excess is closed at once. */
  maxConnections: number;
  /** TCP: a connection idle this long (ms) is closed; 0 means never. */
  idleTimeoutMs: number;
  /**
   * TCP: once a request header's first byte has arrived, the whole header (a
   * frame's prefix and JSON, or a request line) must arrive within this many
   * ms, else the connection is closed; 0 means no limit.
   */
  headerTimeoutMs: number;
  /** CIDRs a peer must match when non-empty. */
  allow: string[];
  /** CIDRs that are refused (deny wins over allow). */
  deny: string[];
  /** TCP: text sent at connect, before the service (lib/banner.ts). */
  banner?: string;
  /** TCP: windows of the day new connections are accepted in (lib/access_times.ts). */
  accessTimes?: string[];
  /** Per-source limits (`max_per_source`, `rate`, `burst`, `ipv6_prefix`), when any is set. */
  limits?: SourceLimitSettings;
  /** TCP: the certificate and key when the listener speaks TLS. */
  tls?: TlsSettings;
  /** TCP: CIDRs of the load balancers whose connections start with a PROXY header. */
  proxyProtocol: string[];
  /** The service's own options, as its `parseOptions` returned them. */
  options: unknown;
  /** Its key path in the file, `listener[N]` (N counts from 0). */
  key: string;
  /** 1-based line of the `[[listener]]` header, when known. */
  line?: number;
}

/** A whole validated config. */
export interface Config {
  /** Where it came from: a path or `<embedded default>`. */
  file: string;
  /** Daemon-wide settings. */
  daemon: DaemonConfig;
  /** Every listener, enabled or not, in file order. */
  listeners: ListenerConfig[];
  /** Things worth one log line each (e.g. what the embedded default skipped). */
  notes: string[];
  /** The TOML text it was parsed from (workers parse the same text). */
  text?: string;
  /** The directory relative paths were resolved against. */
  baseDir?: string;
}

/** A config with problems; `problems` lists every one of them. */
export class ConfigError extends Error {
  /** Every problem found, in file order. */
  readonly problems: ConfigProblem[];

  /**
   * @param problems what is wrong (at least one)
   */
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Options for {@linkcode parseConfig}. */
export interface ParseConfigOptions {
  /** The service table (from the composition root, `handlers/mod.ts`). */
  services: readonly Service[];
  /** Directory relative paths resolve against. @default {the file's directory} */
  baseDir?: string;
}

const DEFAULT_MAX_CONNECTIONS = 512;
const DEFAULT_IDLE_TIMEOUT = "5m";
/** The default `header_timeout` of TCP listeners, in ms. */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Parses and validates a config file's text.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import { defineService } from "./service.ts";
 * const hello = defineService({
 *   name: "hello",
 *   transports: ["tcp"],
 *   defaultPort: 7100,
 *   parseOptions: () => ({}),
 *   open: () => ({ stream: async () => {} }),
 * });
 * const text = '[[listener]]\nservice = "hello"\nlisten = "127.0.0.1:0"\n';
 * const config = parseConfig(text, "demo.toml", { services: [hello] });
 * if (config.listeners[0]!.name !== "hello-tcp-0") throw new Error("default name");
 * ```
 *
 * @param text the TOML source
 * @param file its path (for messages and for resolving relative paths)
 * @param options the service table and base directory
 * @returns the validated config
 * @throws {ConfigError} listing every problem found
 */
export function parseConfig(text: string, file: string, options: ParseConfigOptions): Config {
  let document: Record<string, unknown>;
  try {
    document = parseToml(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      const message = error.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
      throw new ConfigError([{
        file,
        line: error.line,
        key: "",
        message: `invalid TOML: ${message}`,
      }]);
    }
    throw error;
  }
  const problems: ConfigProblem[] = [];
  const lines = locateKeys(text);
  const baseDir = options.baseDir ?? dirname(resolve(file));
  const { services } = options;
  const reader = (table: Record<string, unknown>, prefix: string): OptionReader =>
    new OptionReader(table, { file, prefix, lines, problems, baseDir });

  const root = reader(document, "");
  const daemonTable = tableAt(root, document, "daemon");
  const daemon = readDaemon(
    reader(daemonTable ?? {}, "daemon"),
    daemonTable !== undefined,
    daemonTable?.workers,
  );

  const listeners: ListenerConfig[] = [];
  const identities: ListenerIdentity[] = [];
  const raw = document.listener;
  root.has("listener");
  if (raw !== undefined && !isArrayOfTables(raw)) {
    root.problem("listener", "must be an array of tables: write each one as [[listener]]");
  } else {
    (raw as Record<string, unknown>[] | undefined ?? []).forEach((table, index) => {
      const { listener, identity } = readListener(reader(table, `listener[${index}]`), services);
      const line = lines.get(`listener[${index}]`);
      if (identity) identities.push({ ...identity, line });
      if (listener) {
        listener.line = line;
        listeners.push(listener);
      }
    });
  }
  root.reportUnknown();
  // Every listener whose name and address are known takes part, also one
  // with other problems: all problems are reported in one run.
  checkDuplicates(identities, reader(document, ""));
  const metrics = daemon.metrics;
  const clash = metrics &&
    listeners.find((l) =>
      l.enabled && l.transport === "tcp" && addressesOverlap(l.address, metrics)
    );
  if (clash) {
    reader(daemonTable ?? {}, "daemon").problem(
      "metrics",
      `overlaps the tcp listener "${clash.name}" (${clash.listen}, line ${clash.line ?? "?"})`,
    );
  }
  if (problems.length > 0) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(problems);
  }
  const notes = listeners.some((l) => l.enabled) ? [] : ["No listener is enabled"];
  return { file, daemon, listeners, notes, text, baseDir };
}

function isArrayOfTables(value: unknown): boolean {
  return Array.isArray(value) && value.every((item) => isTable(item));
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

function tableAt(
  root: OptionReader,
  document: Record<string, unknown>,
  key: string,
): Record<string, unknown> | undefined {
  if (!root.has(key)) return undefined;
  const value = document[key];
  if (isTable(value)) return value;
  root.problem(key, `must be a table: write it as [${key}]`);
  return undefined;
}

/** The most `workers` a config may ask for. */
export const MAX_WORKERS = 256;

/** `workers = N | "auto"`. */
function readWorkers(reader: OptionReader, value: unknown): number | "auto" {
  if (typeof value === "string") {
    return reader.string("workers", { default: "auto", choices: ["auto"] }) as "auto";
  }
  if (value === undefined || typeof value === "number") {
    return reader.integer("workers", { default: 1, min: 1, max: MAX_WORKERS });
  }
  reader.has("workers");
  reader.problem("workers", `expected an integer (1 to ${MAX_WORKERS}) or "auto"`);
  return 1;
}

function readDaemon(reader: OptionReader, present: boolean, workers: unknown): DaemonConfig {
  const daemon: DaemonConfig = {
    logLevel: reader.string("log_level", { default: "info", choices: LOG_LEVELS }) as LogLevel,
    logFormat: reader.string("log_format", {
      default: "text",
      choices: ["text", "json"],
    }) as LogFormat,
    shutdownTimeoutMs: reader.duration("shutdown_timeout", { default: "10s", max: 3_600_000 }),
    workers: readWorkers(reader, workers),
  };
  const metrics = reader.string("metrics");
  if (metrics !== undefined) {
    try {
      daemon.metrics = parseListenAddress(metrics);
    } catch (error) {
      reader.problem("metrics", (error as Error).message);
    }
  }
  if (present) reader.reportUnknown();
  return daemon;
}

/**
 * What the duplicate checks compare. A listener with a bad `service` or
 * `listen` still has a name to compare; its address takes part only when
 * its transport and address are known.
 */
type ListenerIdentity =
  & Pick<ListenerConfig, "key" | "name" | "enabled" | "line">
  & Partial<Pick<ListenerConfig, "transport" | "listen" | "address">>;

function readListener(
  reader: OptionReader,
  services: readonly Service[],
): { listener?: ListenerConfig; identity?: ListenerIdentity } {
  const before = reader.problemCount;
  const names = services.map((s) => s.name);
  const serviceName = reader.string("service", { required: true, choices: names });
  const service = services.find((s) => s.name === serviceName);
  const transport = reader.string("transport", {
    choices: ["tcp", "udp"],
  }) as Transport | undefined ?? service?.transports[0];
  if (service && transport && !service.transports.includes(transport)) {
    reader.problem(
      "transport",
      `"${transport}" is not supported by the "${service.name}" service (it supports ${
        service.transports.map((t) => `"${t}"`).join(" and ")
      })`,
    );
  }
  const listen = reader.string("listen", { required: true });
  let address: ListenAddress | undefined;
  if (listen !== undefined) {
    try {
      address = isFdListen(listen) ? parseFdListen(listen) : parseListenAddress(listen);
    } catch (error) {
      reader.problem("listen", (error as Error).message);
    }
  }
  if (address?.fd !== undefined && transport === "udp") {
    reader.problem(
      "listen",
      `"${listen}" cannot be used on a udp listener: Deno's node:dgram cannot adopt an inherited ` +
        `socket ("Unsupported fd type"), so give the address to bind instead`,
    );
  }
  const name = reader.string("name") ??
    (service && transport && address
      ? `${service.name}-${transport}-${address.fd ?? address.port}`
      : "");
  if (reader.has("name") && !NAME.test(name)) {
    reader.problem(
      "name",
      `"${name}" is not a valid name: use letters, digits, ".", "_" and "-" (at most 64)`,
    );
  }
  const enabled = reader.boolean("enabled", true);
  const tcpOnly = (key: string): void => {
    if (transport === "udp" && reader.has(key)) {
      reader.problem(key, `has no effect on a udp listener`);
    }
  };
  tcpOnly("max_connections");
  tcpOnly("idle_timeout");
  tcpOnly("header_timeout");
  const maxConnections = reader.integer("max_connections", {
    default: DEFAULT_MAX_CONNECTIONS,
    min: 1,
    max: 1_000_000,
  });
  const idleTimeoutMs = reader.duration("idle_timeout", {
    default: service?.defaultIdleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT,
  });
  const headerTimeoutMs = reader.duration("header_timeout", {
    default: DEFAULT_HEADER_TIMEOUT_MS,
    max: 3_600_000,
  });
  const cidrCheck = (item: string): string | undefined => {
    try {
      parseCidr(item);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };
  const allow = reader.stringArray("allow", { check: cidrCheck });
  const deny = reader.stringArray("deny", { check: cidrCheck });
  const banner = readBanner(reader, transport);
  const accessTimes = readAccessTimes(reader, transport);
  const limits = readSourceLimits(reader, transport);
  const tls = readTlsSettings(reader, transport);
  const proxyProtocol = readProxyPeers(reader, transport);
  let options: unknown;
  if (service && transport) {
    options = service.parseOptions(reader, transport, address);
    reader.reportUnknown();
  }
  const identity: ListenerIdentity = transport && address && listen !== undefined
    ? { key: reader.prefix, name, transport, listen, address, enabled }
    : { key: reader.prefix, name, enabled };
  if (reader.problemCount > before || !service || !transport || !address || listen === undefined) {
    return { identity };
  }
  const listener: ListenerConfig = {
    key: reader.prefix,
    name,
    service: service.name,
    transport,
    listen,
    address,
    enabled,
    maxConnections,
    idleTimeoutMs,
    headerTimeoutMs,
    allow,
    deny,
    banner,
    accessTimes,
    proxyProtocol,
    options,
  };
  if (limits) listener.limits = limits;
  if (tls) listener.tls = tls;
  return { listener, identity };
}

function checkDuplicates(listeners: ListenerIdentity[], root: OptionReader): void {
  listeners.forEach((listener, index) => {
    const earlier = listeners.slice(0, index);
    const prefix = listener.key;
    const sameName = listener.name !== "" && earlier.find((other) => other.name === listener.name);
    if (sameName) {
      root.problem(
        `${prefix}.name`,
        `duplicate name "${listener.name}" (also used at line ${sameName.line ?? "?"})`,
      );
    }
    const address = listener.address;
    if (!listener.enabled || address === undefined) return;
    const clash = earlier.find((other) =>
      other.enabled && other.address !== undefined && other.transport === listener.transport &&
      addressesOverlap(other.address, address)
    );
    if (clash) {
      root.problem(
        `${prefix}.listen`,
        `${formatHostPort(address.hostname, address.port)}/${listener.transport} ` +
          `overlaps "${clash.name}" (${clash.listen}, line ${clash.line ?? "?"})`,
      );
    }
  });
}
