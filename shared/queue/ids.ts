/**
 * Stream entry ids: comparing them and telling a valid one, as Redis does.
 *
 * @module
 */

const MAX_ID_PART = 2n ** 64n - 1n;

/**
 * Compares two stream ids numerically: negative when a < b.
 *
 * @example
 * ```ts
 * compareIds("1700000000000-2", "1700000000000-10"); // -1
 * ```
 */
export function compareIds(a: string, b: string): number {
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/**
 * True when `text` is a complete stream entry id `<ms>-<seq>`, each part an
 * unsigned 64-bit integer, as Redis accepts it.
 *
 * @example
 * ```ts
 * isStreamId("1700000000000-0"); // true
 * isStreamId("18446744073709551616-0"); // false: beyond 64 bits
 * ```
 */
export function isStreamId(text: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(text);
  return match !== null && BigInt(match[1]) <= MAX_ID_PART && BigInt(match[2]) <= MAX_ID_PART;
}
