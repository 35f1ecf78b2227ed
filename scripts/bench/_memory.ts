import type { BenchContext, Row } from "./_common.ts";
export function memoryRows(_ctx: BenchContext): Promise<Row[]> {
  return Promise.resolve([]);
}
