/**
 * Which quote-store failures are the database's (it cannot open, is busy,
 * read-only, full or unreachable) rather than the entries'. Those become a
 * {@linkcode DependencyError}: the drain keeps the chunk pending and backs off
 * instead of spending its deliveries and dead-lettering every quote.
 *
 * @module
 */

import { DependencyError, messageOf } from "../queue/mod.ts";

// SQLite primary result codes: BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
const SQLITE_TRANSIENT = new Set([5, 6, 7, 8, 10, 13, 14, 15]);

// Errors of the file system while the database file or its folder is opened.
const FS_CODES = new Set(["ENOTDIR", "EEXIST", "EACCES", "EPERM", "EROFS", "ENOSPC", "EIO"]);

// postgres.js connection errors, node:net errors, and SQLSTATE classes 08
// (connection), 53 (resources), 57 (operator intervention: shutdown, not
// accepting connections), 28 (credentials), and 25006 (read-only transaction).
const PG_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "25006",
]);
const PG_CLASSES = ["08", "53", "57", "28"];

interface CodedError {
  code?: unknown;
  errcode?: unknown;
}

/** True when a SQLite or file-system error says the database cannot be used right now. */
export function isSqliteUnavailable(error: unknown): boolean {
  const { code, errcode } = (error ?? {}) as CodedError;
  if (typeof errcode === "number" && SQLITE_TRANSIENT.has(errcode & 0xff)) return true;
  if (typeof code === "string" && FS_CODES.has(code)) return true;
  if (error instanceof Deno.errors.NotADirectory || error instanceof Deno.errors.PermissionDenied) {
    return true;
  }
  return /unable to open database file|database is locked|readonly database|disk I\/O error|database or disk is full/i
    .test(messageOf(error));
}

/** True when a PostgreSQL error says the server cannot be used right now. */
export function isPostgresUnavailable(error: unknown): boolean {
  const { code } = (error ?? {}) as CodedError;
  if (typeof code !== "string") return false;
  return PG_CODES.has(code) || PG_CLASSES.includes(code.slice(0, 2));
}

/** Wraps a store failure as a DependencyError when it is the database's, else returns it. */
export function toStoreError(kind: "sqlite" | "postgres", error: unknown): unknown {
  if (error instanceof DependencyError) return error;
  const unavailable = kind === "sqlite" ? isSqliteUnavailable(error) : isPostgresUnavailable(error);
  if (!unavailable) return error;
  const name = kind === "sqlite" ? "sqlite" : "postgresql";
  return new DependencyError(name, `Quote store (${name}) is unavailable: ${messageOf(error)}`, {
    cause: error,
  });
}
