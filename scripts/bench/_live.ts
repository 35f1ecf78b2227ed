import type { BenchContext, Row } from "./_common.ts";
export function liveLatencyRows(_ctx: BenchContext): Promise<Row[]> {
  return Promise.resolve([]);
}
