import type { BenchContext, Row } from "./_common.ts";
export function httpOverheadRows(_ctx: BenchContext): Promise<Row[]> {
  return Promise.resolve([]);
}
export function coldStartRows(_ctx: BenchContext): Promise<Row[]> {
  return Promise.resolve([]);
}
