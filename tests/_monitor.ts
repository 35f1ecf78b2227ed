/**
 * Test helper: a raw MONITOR connection to a test redis-server, parsed into
 * commands with where they ran ("lua" for commands inside a script).
 *
 * @module
 */

/** One command as MONITOR reported it. */
export interface Monitored {
  /** "lua" for a command a script ran, else the client address. */
  source: string;
  /** Command name (lower case) and arguments. */
  args: string[];
}

/** A running MONITOR session. */
export interface Monitor {
  /** Commands seen so far, in order. */
  readonly seen: Monitored[];
  /** Waits until MONITOR has shown an ECHO of `marker` (so every earlier command arrived). */
  waitFor(marker: string): Promise<void>;
  /** Closes the connection. */
  close(): void;
}

function parseArgs(text: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '"') {
      i += 1;
      continue;
    }
    let value = "";
    i += 1;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") {
        const next = text[i + 1];
        if (next === "x") {
          value += String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        value += next === "n" ? "\n" : next === "r" ? "\r" : next === "t" ? "\t" : next;
        i += 2;
        continue;
      }
      value += text[i];
      i += 1;
    }
    args.push(value);
    i += 1;
  }
  return args;
}

/** Opens MONITOR on 127.0.0.1:`port`. */
export async function startMonitor(port: number): Promise<Monitor> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("MONITOR\r\n"));
  const seen: Monitored[] = [];
  const waiters: { marker: string; resolve: () => void }[] = [];
  // Redis answers +OK once the connection monitors; commands before that are not shown.
  const { promise: monitoring, resolve: started } = Promise.withResolvers<void>();
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    const chunk = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(chunk).catch(() => null);
      if (n === null) return;
      buffer += decoder.decode(chunk.subarray(0, n), { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line === "+OK") started();
        const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
        if (match === null) continue;
        const args = parseArgs(match[2]);
        args[0] = args[0]?.toLowerCase();
        seen.push({ source: match[1], args });
        if (args[0] === "echo") {
          for (const w of waiters.filter((w) => w.marker === args[1])) w.resolve();
        }
      }
    }
  })();
  await monitoring;
  return {
    seen,
    waitFor(marker) {
      if (seen.some((c) => c.args[0] === "echo" && c.args[1] === marker)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ marker, resolve }));
    },
    close() {
      conn.close();
      reading.catch(() => {});
    },
  };
}
