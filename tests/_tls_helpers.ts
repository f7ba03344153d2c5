/**
 * Test certificates, made at test time with openssl (Debian's openssl,
 * installed by scripts/install_test_tools.sh): self-signed pairs exactly as
 * users make them with `openssl req -x509`.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";

/** A certificate and its key in a temp dir. */
export interface TestCert extends AsyncDisposable {
  /** The directory holding both files. */
  dir: string;
  /** Path of the PEM certificate. */
  cert: string;
  /** Path of the PEM private key (mode 0600). */
  key: string;
  /** The certificate's PEM text. */
  pem: string;
  /** Its SHA-256 fingerprint as node:crypto prints it. */
  fingerprint: string;
}

/** Options for {@linkcode makeCert}. */
export interface MakeCertOptions {
  /** The subject's common name. @default {"localhost"} */
  cn?: string;
  /** Subject alternative names. @default {["DNS:localhost", "IP:127.0.0.1", "IP:::1"]} */
  sans?: string[];
  /** Write into this directory (kept on dispose) instead of a fresh one. */
  dir?: string;
  /** File name stem. @default {"server"} */
  name?: string;
}

/**
 * Makes a self-signed EC certificate and key with `openssl req -x509`.
 * @param options subject, names and where to put the files
 * @returns the files; dispose to remove a fresh directory
 * @throws {Error} when openssl fails
 */
export async function makeCert(options: MakeCertOptions = {}): Promise<TestCert> {
  const fresh = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "switchboard-tls-" });
  const name = options.name ?? "server";
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}.key`;
  const sans = options.sans ?? ["DNS:localhost", "IP:127.0.0.1", "IP:::1"];
  const output = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${options.cn ?? "localhost"}`,
      "-addext",
      `subjectAltName=${sans.join(",")}`,
      "-keyout",
      key,
      "-out",
      cert,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`openssl failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  await Deno.chmod(key, 0o600);
  const pem = await Deno.readTextFile(cert);
  return {
    dir,
    cert,
    key,
    pem,
    fingerprint: new X509Certificate(pem).fingerprint256,
    async [Symbol.asyncDispose](): Promise<void> {
      if (fresh) await Deno.remove(dir, { recursive: true });
    },
  };
}
