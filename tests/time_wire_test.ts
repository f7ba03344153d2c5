import assert from "node:assert/strict";
import { decodeRfc868, encodeRfc868, RFC868_EPOCH_OFFSET } from "../handlers/time/wire.ts";

function u32(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
}

Deno.test("RFC 868 counts big-endian seconds since 1900 and wraps in 2036", async (t) => {
  await t.step("the Unix epoch is 2208988800", () => {
    assert.deepEqual([...encodeRfc868(0)], [0x83, 0xaa, 0x7e, 0x80]);
    assert.equal(RFC868_EPOCH_OFFSET, 2208988800);
  });
  await t.step("milliseconds are floored", () => {
    assert.equal(u32(encodeRfc868(1999)), 2208988801);
    assert.equal(u32(encodeRfc868(-1)), 2208988799);
  });
  await t.step("2036-02-07T06:28:16Z is 2^32 seconds after 1900: zero", () => {
    assert.equal(u32(encodeRfc868(Date.UTC(2036, 1, 7, 6, 28, 16))), 0);
    assert.equal(u32(encodeRfc868(Date.UTC(2036, 1, 7, 6, 28, 15))), 2 ** 32 - 1);
  });
});

Deno.test("RFC 868 replies decode in the era nearest the local clock", () => {
  const now = Date.UTC(2026, 10, 22, 10, 30);
  for (const t of [now, now - 86_400_000, Date.UTC(2036, 1, 7, 6, 28, 16), Date.UTC(2040, 0, 1)]) {
    assert.equal(decodeRfc868(encodeRfc868(t), now), t);
  }
  assert.throws(() => decodeRfc868(new Uint8Array(3), now), { name: "RangeError" });
});
