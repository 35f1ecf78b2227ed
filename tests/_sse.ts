/**
 * Test helper: a Server-Sent Events reader that behaves like EventSource:
 * an `id:` line moves the last event id even when no event fires.
 *
 * @module
 */

/** One dispatched event. */
export interface SseEvent {
  /** Event type ("message" when absent). */
  event: string;
  /** Last event id when it fired. */
  id: string;
  /** Data, lines joined with "\n". */
  data: string;
}

/** Options of {@linkcode SseReader.readUntil}. */
export interface ReadUntilOptions {
  /**
   * Longest wait, in ms.
   * @default {5000}
   */
  timeoutMs?: number;
}

/** Reads events from an SSE response body. */
export class SseReader {
  /** Every event dispatched so far. */
  readonly events: SseEvent[] = [];
  /** Last event id, as EventSource would send it in Last-Event-ID. */
  lastId = "";
  /** Last retry hint, in ms. */
  retry: number | undefined;
  /** True once the server ended the response. */
  done = false;
  /** Raw text received. */
  text = "";
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #pending: Promise<ReadableStreamReadResult<string>> | undefined;

  /** Reads `body`, a response body of text/event-stream. */
  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.pipeThrough(new TextDecoderStream()).getReader();
  }

  #parse(block: string): void {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") this.lastId = value;
      else if (field === "retry") this.retry = Number(value);
    }
    if (data.length > 0) this.events.push({ event, id: this.lastId, data: data.join("\n") });
  }

  /** Reads until `until()` holds, the stream ends, or `timeoutMs` passes; returns whether it holds. */
  async readUntil(until: () => boolean, options: ReadUntilOptions = {}): Promise<boolean> {
    const { timeoutMs = 5000 } = options;
    const deadline = Date.now() + timeoutMs;
    while (!until() && !this.done) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      this.#pending ??= this.#reader.read();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const result = await Promise.race([
        this.#pending,
        new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), left)),
      ]);
      clearTimeout(timer);
      if (result === null) return until();
      this.#pending = undefined;
      if (result.done) {
        this.done = true;
        break;
      }
      this.text += result.value;
      this.#buffer += result.value;
      let end: number;
      while ((end = this.#buffer.indexOf("\n\n")) !== -1) {
        this.#parse(this.#buffer.slice(0, end));
        this.#buffer = this.#buffer.slice(end + 2);
      }
    }
    return until();
  }

  /** Events of one type, with their data parsed as JSON. */
  json<T = Record<string, unknown>>(event: string): (T & { _id: string })[] {
    return this.events.filter((e) => e.event === event).map((e) => ({
      ...JSON.parse(e.data),
      _id: e.id,
    }));
  }

  /** Cancels the body (a client that goes away). */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    this.done = true;
  }
}

/** What one {@linkcode readThenDrop} connection saw. */
export interface DroppedConnection {
  /** The reader, with the events it got. */
  reader: SseReader;
  /** The id to resume from: the last event's, or the one given when none came. */
  lastId: string;
}

/**
 * Opens `url` (resuming after `lastId` when set), reads until `target` events
 * came or 300 ms passed, then drops the connection mid-stream.
 */
export async function readThenDrop(
  url: string,
  resume: { lastId: string; target: number },
): Promise<DroppedConnection> {
  const controller = new AbortController();
  const headers: Record<string, string> = resume.lastId === ""
    ? {}
    : { "Last-Event-ID": resume.lastId };
  const response = await fetch(url, { headers, signal: controller.signal });
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}`);
  const reader = new SseReader(response.body!);
  await reader.readUntil(() => reader.events.length >= resume.target, { timeoutMs: 300 });
  controller.abort();
  await reader.cancel();
  return { reader, lastId: reader.lastId || resume.lastId };
}
