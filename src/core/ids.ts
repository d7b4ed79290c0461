import { randomFillSync } from "node:crypto";

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Random bytes drawn in blocks: one call to the system's generator per few hundred ids. */
const pool = Buffer.allocUnsafe(4096);
let poolOffset = pool.length;

/** The offset in `pool` of `n` fresh random bytes. */
function take(n: number): number {
  if (poolOffset + n > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += n;
  return at;
}

let lastMs = -1;
let sequence = 0;

/**
 * A new job id: a version 7 UUID (RFC 9562), lowercase with hyphens: 48 bits
 * of Unix time in milliseconds, a 12-bit sequence, then 62 random bits.
 *
 * Ids made later by this process sort after earlier ones, as text too: the
 * sequence starts at a random value below 2048 each millisecond and counts up
 * within it (RFC 9562's method 1); if it would pass 4095, the time field moves
 * on by a millisecond. Time-ordered keys go in at the right edge of the
 * primary-key index instead of at random places in it, which keeps bulk
 * inserts into a large table fast (docs/BENCHMARKS.md).
 */
export function newJobId(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    const at = take(2);
    sequence = ((pool[at] << 8) | pool[at + 1]) & 0x7ff;
  } else if (++sequence > 0xfff) {
    lastMs++;
    sequence = 0;
  }
  const ms = lastMs;
  const at = take(8);
  const high = Math.floor(ms / 0x1000000); // the top 24 of the 48 time bits
  const low = ms % 0x1000000;
  return (
    HEX[(high >>> 16) & 0xff] +
    HEX[(high >>> 8) & 0xff] +
    HEX[high & 0xff] +
    HEX[(low >>> 16) & 0xff] +
    "-" +
    HEX[(low >>> 8) & 0xff] +
    HEX[low & 0xff] +
    "-" +
    HEX[0x70 | (sequence >>> 8)] +
    HEX[sequence & 0xff] +
    "-" +
    HEX[0x80 | (pool[at] & 0x3f)] +
    HEX[pool[at + 1]] +
    "-" +
    HEX[pool[at + 2]] +
    HEX[pool[at + 3]] +
    HEX[pool[at + 4]] +
    HEX[pool[at + 5]] +
    HEX[pool[at + 6]] +
    HEX[pool[at + 7]]
  );
}
