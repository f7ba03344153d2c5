/**
 * Checks an nkey seed's encoding (base32, a seed prefix naming a public key
 * kind, a CRC-16 checksum) as `nkeys.fromSeed` does, without loading the
 * NATS client: config parsing must not pull it in when no listener dials a
 * bus.
 *
 * @module
 */

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SEED_PREFIX = 18 << 3;
// Server, operator, cluster, account, user and curve keys.
const PUBLIC_PREFIXES = new Set([13 << 3, 14 << 3, 2 << 3, 0, 20 << 3, 23 << 3]);

/** CRC-16/XMODEM (polynomial 0x1021, initial 0), the nkeys checksum. */
function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/**
 * Whether `text` decodes as an nkey seed, by the rules of `nkeys.fromSeed`.
 * @param text the seed (`S…`, base32 without padding)
 * @returns true when it decodes and its checksum and prefixes are valid
 */
export function isNkeySeed(text: string): boolean {
  if (text.length < 4) return false;
  const raw = new Uint8Array((text.length * 5 / 8) | 0);
  let bits = 0;
  let value = 0;
  let length = 0;
  for (const char of text) {
    const digit = BASE32.indexOf(char);
    if (digit === -1) return false;
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      raw[length++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  if (length < 4) return false;
  const payload = raw.subarray(0, length - 2);
  const checksum = raw[length - 2]! | (raw[length - 1]! << 8);
  if (crc16(payload) !== checksum) return false;
  const kind = payload[0]! & 0xf8;
  const role = ((payload[0]! & 7) << 5) | ((payload[1]! & 0xf8) >> 3);
  return kind === SEED_PREFIX && PUBLIC_PREFIXES.has(role);
}
