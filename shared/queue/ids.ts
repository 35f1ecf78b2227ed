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
  const ad = plainDash(a);
  const bd = plainDash(b);
  if (ad > 0 && bd > 0) {
    // Ids as Redis writes them: a longer number is larger, equal lengths compare as text.
    if (ad !== bd) return ad < bd ? -1 : 1;
    for (let i = 0; i < ad; i++) {
      const d = a.charCodeAt(i) - b.charCodeAt(i);
      if (d !== 0) return d < 0 ? -1 : 1;
    }
    const al = a.length - ad;
    const bl = b.length - bd;
    if (al !== bl) return al < bl ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/**
 * Position of the dash of `id` when it is "<ms>-<seq>" without leading zeros
 * (as Redis writes ids), else -1. Such ids compare without allocating, which
 * matters where every entry of a chunk is compared. Digits are not checked:
 * ids come from Redis or from isStreamId.
 */
function plainDash(id: string): number {
  const dash = id.indexOf("-");
  if (dash < 1 || dash === id.length - 1) return -1;
  if (id.charCodeAt(0) === 48 && dash > 1) return -1;
  if (id.charCodeAt(dash + 1) === 48 && id.length - dash > 2) return -1;
  return dash;
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
