/**
 * Keeps secrets out of every log line, response and report: passwords in
 * connection URLs and the values registered as secrets (tokens, passwords).
 *
 * @module
 */

const secrets = new Set<string>();

// scheme://user:password@host -> scheme://user:***@host
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi;

/**
 * Registers a value that must never be shown (a token, a password); values
 * shorter than 4 characters are ignored, as hiding them would hide ordinary text.
 */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= 4) secrets.add(value);
}

/**
 * The URL with its password replaced by `***`.
 *
 * @example
 * ```ts
 * redactUrl("redis://app:s3cret@cache:6379"); // "redis://app:***@cache:6379"
 * ```
 */
export function redactUrl(url: string): string {
  return url.replace(URL_PASSWORD, "$1***@");
}

/** `text` with URL passwords and every registered secret replaced by `***`. */
export function redact(text: string): string {
  let out = redactUrl(text);
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

/** Most characters of an error message that a log line carries. */
const MAX_MESSAGE = 300;

/**
 * One short, redacted line for an error: its name and message, never the
 * command arguments or stack that some errors carry (ioredis attaches the
 * whole command, AUTH passwords and script arguments included).
 */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const line = redact(text).replace(/\s+/g, " ").trim();
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}...` : line;
}
