/**
 * A UDP flooder for the hostile suite, run as its own process so that the
 * test's probes are not starved by it: `udp_flood.ts SECONDS PORT...` sends
 * datagrams from 8 sockets per port as fast as it can for SECONDS, then
 * prints how many it sent.
 *
 * @module
 */

const [secondsText, ...portTexts] = Deno.args;
const deadline = performance.now() + Number(secondsText) * 1000;
const encoder = new TextEncoder();
// A format for time, text for chat: each port gets what its service parses.
const payloads = [encoder.encode("%Y-%m-%d %H:%M:%S"), encoder.encode("flood message ".repeat(20))];
let sent = 0;
await Promise.all(portTexts.flatMap((portText, p) =>
  Array.from({ length: 8 }, async () => {
    const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: Number(portText) };
    const payload = payloads[p % payloads.length]!;
    while (performance.now() < deadline) {
      await Promise.all([0, 1, 2, 3].map(() => socket.send(payload, to).catch(() => {})));
      sent += 4;
    }
    socket.close();
  })
));
console.log(sent);
