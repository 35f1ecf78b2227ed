/**
 * The consumer groups on the quote stream: one per analysis, so that every
 * analysis sees every quote (fan-out), plus the quote store.
 *
 * @module
 */

import { ANALYSES } from "./analysis/registry.ts";
import type { Processor } from "./drain.ts";
import type { Deps } from "./http.ts";

/** Every group name, in drain order. */
export const GROUP_NAMES: readonly string[] = ANALYSES.map((a) => a.group);

/** The processor of every group, for the given dependencies. */
export function processors(_deps: Deps): Processor[] {
  return [...ANALYSES];
}

/** The processor of `group`, or undefined for an unknown group. */
export function findProcessor(deps: Deps, group: string): Processor | undefined {
  return processors(deps).find((p) => p.group === group);
}
