/**
 * The consumer groups on the quote stream: one per analysis, so that every
 * analysis sees every quote (fan-out), plus the quote store.
 *
 * @module
 */

import { ANALYSES } from "./analysis/registry.ts";
import type { Processor } from "./drain.ts";
import type { Deps } from "./http.ts";
import { quoteStoreSink } from "./quote_store.ts";

/** Every group name, in drain order; the quote store comes last (see shared/group_names.ts). */
export { GROUP_NAMES } from "./group_names.ts";

/**
 * The processor of every group, for the given dependencies. The quote-store
 * sink uses `deps.quoteStore`, else the isolate's store for `deps.config`
 * (created once and cached by shared/quote_store.ts, opened on first write).
 */
export function processors(deps: Deps): Processor[] {
  return [...ANALYSES, quoteStoreSink(deps)];
}

/** The processor of `group`, or undefined for an unknown group. */
export function findProcessor(deps: Deps, group: string): Processor | undefined {
  return processors(deps).find((p) => p.group === group);
}
