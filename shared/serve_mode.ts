/**
 * How this process serves: under `deno run`, main.ts serves itself and
 * registers its crons; under `deno serve --parallel`, every worker isolate
 * imports main.ts, and each `Deno.cron` would run once per worker. One
 * worker per process takes the cron duty: the one that creates the
 * process's lock file first (no Redis needed, and it dies with the process).
 *
 * @module
 */

import { tmpdir } from "node:os";

/** True when the process runs under `deno serve`; false under `deno run` or when it cannot tell. */
export function servedByDenoServe(): boolean {
  try {
    const args = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
    return args[1] === "serve";
  } catch {
    // No /proc (macOS, Windows) or no read permission: `deno run`, which serves itself.
    return false;
  }
}

/** Where this process's cron lock lives: the pid and start time name one process, never reused. */
function lockPath(): string {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  // Field 22 (start time) follows the command name in parentheses, which may hold spaces.
  const started = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  return `${tmpdir()}/tickstream-cron-${Deno.pid}-${started}.lock`;
}

/**
 * True for the one isolate of this process that registers the crons: always
 * under `deno run`, the first worker under `deno serve --parallel`.
 *
 * @example
 * ```ts
 * if (takeCronDuty()) Deno.cron("drain", "* * * * *", () => {});
 * ```
 */
export function takeCronDuty(): boolean {
  if (!servedByDenoServe()) return true;
  try {
    Deno.writeTextFileSync(lockPath(), String(Deno.pid), { createNew: true });
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    // No lock possible (read-only tmp): every worker runs its crons, as Deno does by default.
    return true;
  }
}

/** Removes this process's cron lock, when it holds one; called on shutdown. */
export function releaseCronDuty(): void {
  try {
    Deno.removeSync(lockPath());
  } catch {
    // Not served, never locked, or already gone.
  }
}
