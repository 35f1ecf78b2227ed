/**
 * The names of the consumer groups on the quote stream, in drain order, with
 * no dependency beyond the pure analyses: the CLI lists and drains groups
 * without loading the quote store or its database drivers.
 *
 * @module
 */

import { ANALYSES } from "./analysis/registry.ts";

/** Group of the quote store sink (shared/quote_store.ts names its processor the same). */
export const QUOTE_STORE_GROUP_NAME = "quote-store";

/** Every group name, in drain order; the quote store comes last. */
export const GROUP_NAMES: readonly string[] = [
  ...ANALYSES.map((a) => a.group),
  QUOTE_STORE_GROUP_NAME,
];
