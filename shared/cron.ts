/**
 * Checks 5-field cron expressions before they reach `Deno.cron`, which throws
 * an uncaught error for out-of-range fields and panics on dates that never
 * come (`0 0 31 2 *`). Fields: minute, hour, day of month, month, day of week.
 *
 * @module
 */

interface Field {
  /** Field name in messages. */
  name: string;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** Names allowed instead of numbers, mapped to their values. */
  names?: Record<string, number>;
}

const MONTHS: Record<string, number> = Object.fromEntries(
  ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    .map((name, i) => [name, i + 1]),
);
// Deno.cron numbers the days of the week 1 to 7 and refuses 0.
const DAYS: Record<string, number> = Object.fromEntries(
  ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"].map((name, i) => [name, i + 1]),
);

const FIELDS: Field[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS },
  { name: "day-of-week", min: 1, max: 7, names: DAYS },
];

// Days in each month, February in a leap year.
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Raised when a cron expression cannot be used; the message says why. */
export class CronError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CronError";
  }
}

function valueOf(text: string, field: Field): number {
  const named = field.names?.[text.toUpperCase()];
  if (named !== undefined) return named;
  if (!/^\d{1,2}$/.test(text)) return NaN;
  return Number(text);
}

/** The set of values a field allows, or a reason it is invalid. */
function expand(text: string, field: Field): Set<number> | string {
  const allowed = `* or values from ${field.min} to ${field.max}`;
  const values = new Set<number>();
  for (const part of text.split(",")) {
    const [range, stepText, extra] = part.split("/");
    if (extra !== undefined || range === "") return `its ${field.name} field must be ${allowed}`;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1 || !/^\d+$/.test(stepText ?? "1")) {
      return `its ${field.name} field has an invalid step "${stepText}"`;
    }
    let low: number;
    let high: number;
    if (range === "*") {
      [low, high] = [field.min, field.max];
    } else if (range.includes("-")) {
      const [a, b] = range.split("-");
      [low, high] = [valueOf(a, field), valueOf(b, field)];
    } else {
      low = valueOf(range, field);
      high = stepText === undefined ? low : field.max;
    }
    if (
      !Number.isInteger(low) || !Number.isInteger(high) || low < field.min || high > field.max ||
      low > high
    ) {
      return `its ${field.name} field must be ${allowed}`;
    }
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return values;
}

/**
 * Checks a 5-field cron expression: every field in range, and a date that
 * exists (a day of month some month of the schedule has).
 *
 * @example
 * ```ts
 * checkCron("0 * * * *"); // passes
 * checkCron("0 0 31 2 *"); // throws CronError: February never has a 31st
 * ```
 * @throws {CronError} With the reason, when the expression cannot be used.
 */
export function checkCron(expression: string): void {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5) {
    throw new CronError(
      `it must have 5 fields (minute hour day-of-month month day-of-week), not ${parts.length}`,
    );
  }
  const sets: Set<number>[] = [];
  for (let i = 0; i < 5; i++) {
    // "L" (last day of the month) is the one letter Deno.cron takes in a day field.
    if (i === 2 && parts[i].toUpperCase() === "L") {
      sets.push(new Set([28]));
      continue;
    }
    const set = expand(parts[i], FIELDS[i]);
    if (typeof set === "string") throw new CronError(set);
    sets.push(set);
  }
  const [, , days, months, weekdays] = sets;
  // With both day fields restricted cron fires on either, so only a lone day
  // of month can name a date that never comes.
  const weekdayRestricted = parts[4] !== "*" && weekdays.size < 7;
  if (parts[2] !== "*" && !weekdayRestricted) {
    const fits = [...months].some((m) => [...days].some((d) => d <= MONTH_DAYS[m - 1]));
    if (!fits) throw new CronError("it names a day that none of its months has, so it never fires");
  }
}
