/**
 * Plain-text tables and durations for the trigger CLI.
 *
 * @module
 */

/** A column of {@linkcode formatTable}: its heading and whether it holds numbers. */
export interface Column {
  /** Heading. */
  title: string;
  /** Right-aligned when true. */
  numeric?: boolean;
}

/**
 * Lays rows out under their headings, columns two spaces apart, numbers
 * right-aligned.
 *
 * @example
 * ```ts
 * formatTable([{ title: "group" }, { title: "lag", numeric: true }], [["price-alerts", "0"]]);
 * ```
 */
export function formatTable(columns: Column[], rows: string[][]): string {
  const widths = columns.map((c, i) =>
    Math.max(c.title.length, ...rows.map((row) => (row[i] ?? "").length))
  );
  function line(cells: string[]): string {
    return cells.map((cell, i) =>
      columns[i].numeric ? cell.padStart(widths[i]) : cell.padEnd(widths[i])
    ).join("  ").trimEnd();
  }
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join("\n");
}

/** A duration in ms as people read it: "850 ms", "12 s", "4 min", "3 h"; "-" for null. */
export function formatAge(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
