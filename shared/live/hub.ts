/**
 * The live feed's shared reader: one hub per isolate and stream layout reads
 * every partition's quote and alert streams with blocking XREADs on
 * dedicated connections and fans the entries out to every subscriber in
 * memory, so a thousand clients still mean one blocked read per stream group.
 *
 * On one Redis a single XREAD names every stream of every partition. On
 * Redis Cluster one command cannot name keys of different slots (CROSSSLOT)
 * and a blocked XREAD holds its connection, so each partition (its two
 * streams share the partition's hash tag) gets its own reader client: the
 * shared command client is never blocked.
 *
 * @module
 */

import { clusterCredentials } from "../redis_cluster.ts";
import type { Cluster, Redis } from "ioredis";
import type { Config } from "../config.ts";
import type { Deps } from "../http.ts";
import { openStream, readStreams, type RedisClient, type StreamEntry } from "../queue/mod.ts";
import { createRedis } from "../redis.ts";
import { createClusterClient } from "../redis_cluster.ts";
import { type Cursor, type EntryId, idText, isAfter, parseEntryId, ZERO } from "./cursor.ts";
import { idOf, type LiveEvent, type LiveStream, liveStreams, mergeEvents } from "./events.ts";

/** What the live feed needs: settings and the shared command client. */
export type LiveDeps = Pick<Deps, "config" | "redis">;

/** What the hub asks of a subscriber. */
export interface HubSubscriber {
  /** Takes new events, synchronously with the hub's position moving past them. */
  push(events: LiveEvent[]): void;
}

const READ_COUNT = 1000;
const BLOCK_MS = 5000;
const RETRY_MS = 250;

type Reader = Redis | Cluster;

async function lastIdOf(redis: RedisClient, key: string): Promise<EntryId> {
  const info = await openStream(redis, key).info();
  return info === null ? ZERO : parseEntryId(info.lastGeneratedId) ?? ZERO;
}

function createReader(config: Config): Reader {
  if (config.redisClusterNodes === undefined) {
    return createRedis(config.redisUrl, { commandTimeoutMs: 0, name: "tickstream-live" });
  }
  return createClusterClient(config.redisClusterNodes, {
    ...clusterCredentials(config.redisUrl),
    commandTimeoutMs: 0,
    name: "tickstream-live",
  });
}

/** A reader connection and the promise of its end, taken when it is made. */
interface ReaderSlot {
  /** The dedicated client. */
  client: Reader;
  /** Resolves on its "end" event (a Cluster's status may read "close" afterwards). */
  ended: Promise<void>;
  /** True once it ended. */
  done: boolean;
}

function openReader(config: Config): ReaderSlot {
  const client = createReader(config);
  let resolve!: () => void;
  const slot: ReaderSlot = { client, ended: new Promise((r) => resolve = r), done: false };
  client.once("end", () => {
    slot.done = true;
    resolve();
  });
  return slot;
}

/** The key of the hub serving `config`: one per Redis, stream names and partition count. */
export function hubKey(config: Config): string {
  const where = config.redisClusterNodes ?? config.redisUrl;
  return `${where}|${config.streamKey}|${config.alertsKey}|${config.streamPartitions}`;
}

/** The shared reader: blocking XREAD loops over every stream, fanned out in memory. */
export class LiveHub {
  /** Key in the isolate's table of hubs. */
  readonly key: string;
  /** Settings it reads with. */
  readonly config: Config;
  /** Every stream it reads, in cursor order. */
  readonly streams: readonly LiveStream[];
  /** The shared command client (catch-up reads, stream info). */
  readonly commands: () => RedisClient;
  #groups: LiveStream[][];
  #readers: (ReaderSlot | undefined)[];
  #subscribers = new Set<HubSubscriber>();
  #position: Cursor;
  #ready: Promise<void> | undefined;
  #loops: Promise<void>[] = [];
  #stopped = false;
  #stopping: Promise<void> | undefined;
  #pauses = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();
  #onStop: (hub: LiveHub, done: Promise<void>) => void;

  /** Creates an idle hub; the first `join()` starts it; `onStop` gets the promise of its stopping. */
  constructor(
    key: string,
    deps: LiveDeps,
    onStop: (hub: LiveHub, done: Promise<void>) => void,
  ) {
    this.key = key;
    this.config = deps.config;
    this.commands = () => deps.redis();
    this.#onStop = onStop;
    this.streams = liveStreams(this.config);
    this.#position = this.streams.map(() => ZERO);
    // One XREAD may name keys of many slots only outside a cluster.
    this.#groups = this.config.redisClusterNodes === undefined ? [[...this.streams]] : Array.from(
      { length: this.config.streamPartitions },
      (_, p) => this.streams.filter((s) => s.partition === p),
    );
    this.#readers = this.#groups.map(() => undefined);
  }

  /** True once told to stop. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Where the readers are: every entry up to here has been pushed to the subscribers. */
  get position(): Cursor {
    return this.#position;
  }

  /** Adds `sub` at once (so it sees every later event) and waits for the readers to run. */
  async join(sub: HubSubscriber): Promise<void> {
    this.#subscribers.add(sub);
    this.#ready ??= this.#start();
    try {
      await this.#ready;
    } catch (error) {
      this.leave(sub);
      throw error;
    }
  }

  /** Removes `sub`, stopping the hub when it was the last one. */
  leave(sub: HubSubscriber): void {
    this.#subscribers.delete(sub);
    if (this.#subscribers.size === 0) this.stop();
  }

  /** Stops reading and disconnects; resolves once every reader connection is closed. */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#stopped = true;
    for (const pause of this.#pauses) {
      clearTimeout(pause.timer);
      pause.resolve();
    }
    this.#pauses.clear();
    // disconnect(), not quit(): QUIT would queue behind the blocked XREAD.
    for (const reader of this.#readers) reader?.client.disconnect();
    this.#stopping = (async () => {
      await this.#ready?.catch(() => {});
      await Promise.all(this.#loops);
      // A loop may have replaced an ended cluster reader meanwhile.
      for (const reader of this.#readers) reader?.client.disconnect();
      await Promise.all(this.#readers.map((reader) => reader?.ended));
    })();
    this.#onStop(this, this.#stopping);
    return this.#stopping;
  }

  async #start(): Promise<void> {
    const redis = this.commands();
    const ids = await Promise.all(this.streams.map((s) => lastIdOf(redis, s.key)));
    if (this.#stopped) return;
    this.#position = ids;
    this.#loops = this.#groups.map((group, g) => {
      this.#readers[g] = openReader(this.config);
      return this.#run(g, group);
    });
  }

  async #run(g: number, group: LiveStream[]): Promise<void> {
    while (!this.#stopped) {
      // An ended cluster client stays ended (every node was lost): make another.
      if (this.#readers[g]!.done) this.#readers[g] = openReader(this.config);
      const reader = this.#readers[g]!.client;
      let read: Map<string, StreamEntry[]>;
      try {
        read = await readStreams(
          reader,
          group.map((s) => [s.key, idText(this.#position[s.index])]),
          { count: READ_COUNT, blockMs: BLOCK_MS },
        );
      } catch {
        if (this.#stopped) break;
        // Redis is down, restarting or failing over: the position is kept,
        // so nothing is skipped once it is back.
        await this.#sleep(RETRY_MS);
        continue;
      }
      if (this.#stopped) break;
      const reads = group.map((s) => read.get(s.key) ?? []);
      if (reads.every((entries) => entries.length === 0)) {
        await this.#rewindIfReset(group);
        continue;
      }
      this.#dispatch(group, reads);
    }
  }

  /** Pushes new entries to every subscriber; moves the position first, in the same tick. */
  #dispatch(group: LiveStream[], reads: StreamEntry[][]): void {
    const position = [...this.#position];
    group.forEach((s, i) => {
      const entries = reads[i];
      if (entries.length > 0) position[s.index] = idOf(entries[entries.length - 1]);
    });
    this.#position = position;
    const events = mergeEvents(group, reads, this.streams.length);
    if (events.length === 0) return;
    for (const sub of this.#subscribers) sub.push(events);
  }

  /** A stream recreated behind the reader (FLUSHALL, DEL) would block it forever: follow it back. */
  async #rewindIfReset(group: LiveStream[]): Promise<void> {
    try {
      const redis = this.commands();
      const last = await Promise.all(group.map((s) => lastIdOf(redis, s.key)));
      if (this.#stopped) return;
      if (!group.some((s, i) => isAfter(this.#position[s.index], last[i]))) return;
      const position = [...this.#position];
      group.forEach((s, i) => {
        if (isAfter(position[s.index], last[i])) position[s.index] = last[i];
      });
      this.#position = position;
    } catch {
      // The next read reports the outage.
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const pause = {
        timer: setTimeout(() => {
          this.#pauses.delete(pause);
          resolve();
        }, ms),
        resolve,
      };
      this.#pauses.add(pause);
    });
  }
}
