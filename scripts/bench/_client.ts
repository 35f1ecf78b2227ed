/**
 * Private: the client scenario, which decides the ioredis major and protocol.
 * The drains' reads are most of their time, and a read's reply is parsed by
 * the client, so the raw batch consumer runs over the same entries with the
 * engine's client (ioredis 5, RESP2) and with ioredis 6 on RESP3 (its
 * default) and on RESP2, in alternating order, as ratios to the first.
 *
 * @module
 */

import { Redis as Redis6 } from "ioredis6";
import type { Redis } from "ioredis";
import { emitQuotes } from "../../functions/emit_quotes.ts";
import { command } from "../../shared/queue/client.ts";
import { rawBatchConsumer } from "./_drain.ts";
import {
  benchConfig,
  type BenchContext,
  benchDeps,
  median,
  ratioRow,
  type Row,
  timed,
} from "./_common.ts";

/** The clients compared; the first is the engine's and the baseline. */
const CLIENTS = ["ioredis5-resp2", "ioredis6-resp3", "ioredis6-resp2"] as const;

/** Rows of client/<name>: raw batch consumer entries/s per client, as ratios to ioredis 5. */
export async function clientRows(ctx: BenchContext): Promise<Row[]> {
  const batches = ctx.quick ? 1 : 5;
  const resp3 = new Redis6(ctx.redisUrl, { protocol: 3, lazyConnect: false });
  const resp2 = new Redis6(ctx.redisUrl, { protocol: 2, lazyConnect: false });
  const clients: Record<(typeof CLIENTS)[number], Redis> = {
    "ioredis5-resp2": ctx.redis,
    // ioredis 6 has the same command API; only the types differ.
    "ioredis6-resp3": resp3 as unknown as Redis,
    "ioredis6-resp2": resp2 as unknown as Redis,
  };
  const rates = new Map<string, number[]>(CLIENTS.map((c) => [c, []]));
  let total = 0;
  try {
    for (let round = 0; round <= ctx.rounds; round++) {
      await ctx.redis.flushall();
      const config = benchConfig(ctx, { STREAM_KEY: `bench:client:${round}` });
      const deps = benchDeps(ctx, config);
      for (let i = 0; i < batches; i++) await emitQuotes(deps, { ticks: 1000 });
      total = batches * 1000 * config.symbols.length;
      ctx.progress(`client: round ${round} of ${ctx.rounds}, ${total} entries`);
      const order = round % 2 === 0 ? [...CLIENTS] : [...CLIENTS].reverse();
      for (const name of order) {
        const group = `raw-${name}`;
        await command(ctx.redis, "XGROUP", "CREATE", config.streamKey, group, "0");
        let read = 0;
        const ms = await timed(async () => {
          read = await rawBatchConsumer(clients[name], config.streamKey, group);
        });
        if (read !== total) throw new Error(`Client ${name} read ${read} of ${total} entries`);
        // Round 0 warms up each client's parser and is not kept.
        if (round > 0) rates.get(name)!.push(read / (ms / 1000));
      }
    }
  } finally {
    resp3.disconnect();
    resp2.disconnect();
    await ctx.redis.flushall();
  }
  const base = rates.get(CLIENTS[0])!;
  return CLIENTS.map((name) => ({
    ...ratioRow(`client/${name}`, {
      figures: rates.get(name)!,
      baselines: base,
      unit: "entries/s",
    }),
    note: `XREADGROUP COUNT 1000 + XACK over ${total} entries (median of ${base.length}: ${
      median(rates.get(name)!).toFixed(0)
    }); the engine uses ${CLIENTS[0]}`,
  }));
}
