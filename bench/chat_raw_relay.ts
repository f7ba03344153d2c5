/**
 * The smallest Deno UDP relay (no supervisor, no room): what Deno's datagram
 * API costs per delivery, and how the sends of one fan-out are best issued.
 *
 *   deno run -A bench/chat_raw_relay.ts PORT [seq|all|last|ff]
 *
 * `seq` awaits each send; `all` awaits Promise.all of them; `last` awaits
 * only the last one; `ff` does not wait. Drive it with chat_udp_load.
 *
 * @module
 */

const [portText, mode = "all"] = Deno.args;
const socket = Deno.listenDatagram({
  hostname: "127.0.0.1",
  port: Number(portText),
  transport: "udp",
});
const members = new Map<string, Deno.NetAddr>();
const buffer = new Uint8Array(65536);
const prefix = new TextEncoder().encode("[127.0.0.1:12345] ");
const ignore = (): void => {};

for (;;) {
  const [data, from] = (await socket.receive(buffer)) as [Uint8Array, Deno.NetAddr];
  const key = `${from.hostname} ${from.port}`;
  if (!members.has(key)) members.set(key, from);
  const out = new Uint8Array(prefix.length + data.length);
  out.set(prefix);
  out.set(data, prefix.length);
  if (mode === "seq") {
    for (const [other, to] of members) if (other !== key) await socket.send(out, to);
  } else if (mode === "all") {
    const sends: Promise<number>[] = [];
    for (const [other, to] of members) if (other !== key) sends.push(socket.send(out, to));
    await Promise.all(sends);
  } else if (mode === "last") {
    let last: Promise<number> | undefined;
    for (const [other, to] of members) {
      if (other !== key) {
        last?.catch(ignore);
        last = socket.send(out, to);
      }
    }
    await last;
  } else {
    for (const [other, to] of members) if (other !== key) socket.send(out, to).catch(ignore);
  }
}
