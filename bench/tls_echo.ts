/**
 * Echo throughput through a switchboard echo listener, plain TCP and TLS
 * (node:tls over the accepted connection): one client sends SIZE bytes in
 * 64 KiB writes and reads the echo, over loopback.
 *
 *   deno run -A bench/tls_echo.ts [MiB]
 *
 * Needs openssl (a throwaway self-signed pair is made in a temp dir).
 *
 * @module
 */

import { connect as tlsConnect } from "node:tls";
import { parseConfig } from "../lib/config.ts";
import { Logger } from "../lib/log.ts";
import { Supervisor } from "../lib/supervisor.ts";
import { SERVICES } from "../handlers/mod.ts";

const mib = Number(Deno.args[0] ?? 64);
const size = mib * 1024 * 1024;
const dir = await Deno.makeTempDir({ prefix: "switchboard-bench-" });
const made = await new Deno.Command("openssl", {
  args: [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    `${dir}/key.pem`,
    "-out",
    `${dir}/cert.pem`,
  ],
  stdout: "null",
  stderr: "null",
}).output();
if (!made.success) throw new Error("openssl failed");
await Deno.chmod(`${dir}/key.pem`, 0o600);
const ca = await Deno.readTextFile(`${dir}/cert.pem`);
const config = parseConfig(
  `[[listener]]\nname = "plain"\nservice = "echo"\nlisten = "127.0.0.1:0"\n` +
    `[[listener]]\nname = "tls"\nservice = "echo"\nlisten = "127.0.0.1:0"\n` +
    `tls = { cert = "${dir}/cert.pem", key = "${dir}/key.pem" }\n`,
  "bench.toml",
  { services: SERVICES },
);
const supervisor = new Supervisor({ log: new Logger({ level: "error" }), services: SERVICES });
await supervisor.apply(config);
const port = (name: string): number => supervisor.listeners.find((l) => l.name === name)!.addr.port;

async function plain(): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: port("plain") });
  const chunk = new Uint8Array(65536);
  const started = performance.now();
  const reading = (async () => {
    const buffer = new Uint8Array(65536);
    let got = 0;
    while (got < size) {
      const n = await conn.read(buffer);
      if (n === null) break;
      got += n;
    }
  })();
  for (let sent = 0; sent < size; sent += chunk.length) {
    for (let w = 0; w < chunk.length;) w += await conn.write(chunk.subarray(w));
  }
  await reading;
  conn.close();
  return performance.now() - started;
}

function tls(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port: port("tls"), ca });
    const chunk = new Uint8Array(65536);
    let started = 0;
    let got = 0;
    socket.on("secureConnect", () => {
      started = performance.now();
      let sent = 0;
      const pump = (): void => {
        while (sent < size) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once("drain", pump);
            return;
          }
        }
      };
      pump();
    });
    socket.on("data", (data: Uint8Array) => {
      got += data.length;
      if (got >= size) {
        socket.destroy();
        resolve(performance.now() - started);
      }
    });
    socket.on("error", reject);
  });
}

for (const [name, run] of [["plain", plain], ["tls", tls]] as const) {
  const ms = await run();
  console.log(
    `${name}: ${mib} MiB echoed in ${ms.toFixed(0)} ms = ${(mib / (ms / 1000)).toFixed(0)} MiB/s`,
  );
}
await supervisor.shutdown(1000);
await Deno.remove(dir, { recursive: true });
