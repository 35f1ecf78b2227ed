/**
 * Private: the drain-partitions scenario (one group over 1, 2 and 4
 * partitions with as many concurrent invocations, on one Redis and on the
 * cluster). A placeholder until partitions exist: it reports the scenario
 * as skipped, so the table and the JSON already have its row.
 *
 * To wire it: replace the body of {@linkcode partitionRows} with the
 * measurement (rows "drain-partitions/1", "/2", "/4" with the 1-partition
 * rate as baseline and `ratioRow(..., { atLeast: 1.5 })` for 4), and print
 * the CPU use in the row's `note` where the machine cannot show the gain.
 *
 * @module
 */

import type { BenchContext, Row } from "./_common.ts";

/** Rows of drain-partitions; skipped until partitions are built. */
export function partitionRows(_ctx: BenchContext): Promise<Row[]> {
  return Promise.resolve([{
    scenario: "drain-partitions",
    figure: null,
    unit: "entries/s",
    baseline: null,
    ratio: null,
    target: "4 partitions ratio >= 1.5",
    pass: null,
    note: "skipped: partitions not built yet",
  }]);
}
