/**
 * The `tls = { cert, key }` key of a TCP listener: reading and checking the
 * certificate chain and private key when the config is loaded (so `check`
 * and a reload refuse a bad pair), and the secure context new connections
 * are served with. A reload re-reads both files: a changed pair makes the
 * listener "changed", so new connections get the new pair while open ones
 * keep theirs, and the socket stays.
 *
 * @module
 */

import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { CredentialError, readCredential } from "./credentials.ts";
import type { OptionReader } from "./option_reader.ts";
import { PrivateFileError, readPrivateFile } from "./private_file.ts";
import type { Transport } from "./service.ts";

/** A listener's certificate and key, checked, with the context built from them. */
export class TlsSettings {
  /** Where the certificate chain came from (a path or `credential:NAME`). */
  readonly cert: string;
  /** Where the key came from (a path or `credential:NAME`). */
  readonly key: string;
  /** SHA-256 over the chain and key: a reload with other files is a change. */
  readonly digest: string;
  /** The first certificate's subject, e.g. `CN=example.org`. */
  readonly subject: string;
  /** When the first certificate expires. */
  readonly notAfter: Date;
  #context: SecureContext;

  /**
   * @param options the sources, the PEM texts, and the parsed certificate
   */
  constructor(
    options: { cert: string; key: string; certPem: string; keyPem: string; x509: X509Certificate },
  ) {
    this.cert = options.cert;
    this.key = options.key;
    this.digest = createHash("sha256").update(options.certPem).update("\0").update(options.keyPem)
      .digest("hex");
    this.subject = options.x509.subject.replaceAll("\n", ", ");
    this.notAfter = new Date(options.x509.validTo);
    this.#context = createSecureContext({
      cert: options.certPem,
      key: options.keyPem,
      minVersion: "TLSv1.2",
    });
  }

  /** The secure context handshakes use. */
  get context(): SecureContext {
    return this.#context;
  }

  /** What a settings comparison sees: sources and digest, never the key. */
  toJSON(): { cert: string; key: string; digest: string } {
    return { cert: this.cert, key: this.key, digest: this.digest };
  }
}

interface Source {
  label: string;
  read: () => string;
  key: string;
}

function sourceOf(
  reader: OptionReader,
  name: "cert" | "key",
  env: ((name: string) => string | undefined) | undefined,
): Source | undefined {
  const path = reader.path(name);
  const credential = reader.string(`${name}_credential`);
  if (path !== undefined && credential !== undefined) {
    reader.problem(`${name}_credential`, `give either "${name}" or "${name}_credential", not both`);
    return undefined;
  }
  if (credential !== undefined) {
    return {
      label: `credential:${credential}`,
      read: () => readCredential(credential, env),
      key: `${name}_credential`,
    };
  }
  if (path === undefined) {
    reader.problem(name, `is required (or ${name}_credential)`);
    return undefined;
  }
  // A private key is a secret: refused when others may read it, as token files are.
  const read = name === "key" ? () => readPrivateFile(path) : () => readPlain(path);
  return { label: path, read, key: name };
}

function readPlain(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "does not exist" : (error as Error).message;
    throw new PrivateFileError(`"${path}" ${why}`);
  }
}

function load(reader: OptionReader, source: Source): string | undefined {
  try {
    return source.read();
  } catch (error) {
    if (!(error instanceof PrivateFileError || error instanceof CredentialError)) throw error;
    reader.problem(source.key, error.message);
    return undefined;
  }
}

/**
 * Reads a listener's `tls` table: `cert` (PEM chain, leaf first) and `key`
 * (PEM private key, not readable by others), or `cert_credential` /
 * `key_credential` naming systemd credentials. Allowed on TCP listeners
 * only. The pair is checked here: unreadable, unparsable or mismatched
 * files are problems (exit 78 at start, a refused reload later).
 * @param reader the listener's option reader
 * @param transport the listener's transport
 * @param env reads an environment variable (for credentials) @default {Deno.env.get}
 * @returns the settings, or undefined when `tls` is absent or has problems
 */
export function readTlsSettings(
  reader: OptionReader,
  transport: Transport | undefined,
  env?: (name: string) => string | undefined,
): TlsSettings | undefined {
  if (!reader.has("tls")) return undefined;
  if (transport === "udp") {
    reader.problem("tls", "TLS needs a tcp listener (there is no TLS over udp)");
    return undefined;
  }
  const table = reader.table("tls");
  if (!table) return undefined;
  const certSource = sourceOf(table, "cert", env);
  const keySource = sourceOf(table, "key", env);
  table.reportUnknown();
  if (!certSource || !keySource) return undefined;
  const certPem = load(table, certSource);
  const keyPem = load(table, keySource);
  if (certPem === undefined || keyPem === undefined) return undefined;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (error) {
    table.problem(
      certSource.key,
      `"${certSource.label}" is not a PEM certificate: ${(error as Error).message}`,
    );
    return undefined;
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (error) {
    table.problem(
      keySource.key,
      `"${keySource.label}" is not an unencrypted PEM private key: ${(error as Error).message}`,
    );
    return undefined;
  }
  if (!x509.checkPrivateKey(privateKey)) {
    table.problem(
      keySource.key,
      `"${keySource.label}" does not belong to the certificate "${certSource.label}"`,
    );
    return undefined;
  }
  try {
    return new TlsSettings({
      cert: certSource.label,
      key: keySource.label,
      certPem,
      keyPem,
      x509,
    });
  } catch (error) {
    table.problem("", `cannot use this certificate and key: ${(error as Error).message}`);
    return undefined;
  }
}
