/**
 * Named errors the functions throw, each carrying the HTTP status it maps to
 * in the one place that turns errors into responses (`app.onError`).
 *
 * @module
 */

/** An error that should reach the client with a given status and message. */
export class HttpError extends Error {
  /** HTTP status code. */
  readonly status: number;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Record<string, string>;
  /** Extra members of the JSON error body, beside `error`. */
  readonly details: Record<string, unknown>;
  /** Creates the error with its status, message and optional headers and body members. */
  constructor(
    status: number,
    message: string,
    options?: ErrorOptions & {
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
    },
  ) {
    super(message, options);
    this.name = "HttpError";
    this.status = status;
    this.headers = options?.headers ?? {};
    this.details = options?.details ?? {};
  }
}

/** 400: the request body, path or query is malformed. */
export class BadRequestError extends HttpError {
  /** Creates a 400 error. */
  constructor(message: string, options?: ErrorOptions) {
    super(400, message, options);
    this.name = "BadRequestError";
  }
}

/** 404: the named resource does not exist. */
export class NotFoundError extends HttpError {
  /** Creates a 404 error. */
  constructor(message: string, options?: ErrorOptions) {
    super(404, message, options);
    this.name = "NotFoundError";
  }
}

/** 409: the same request is still being processed. */
export class ConflictError extends HttpError {
  /** Creates a 409 error. */
  constructor(message: string, options?: ErrorOptions) {
    super(409, message, options);
    this.name = "ConflictError";
  }
}

/** 422: the request contradicts an earlier one (idempotency key reused). */
export class UnprocessableError extends HttpError {
  /** Creates a 422 error. */
  constructor(message: string, options?: ErrorOptions) {
    super(422, message, options);
    this.name = "UnprocessableError";
  }
}

/** 429: backpressure; retry after the given number of seconds. */
export class BackpressureError extends HttpError {
  /** Creates a 429 error with a Retry-After header. */
  constructor(message: string, retryAfterSeconds: number, options?: ErrorOptions) {
    super(429, message, { ...options, headers: { "Retry-After": String(retryAfterSeconds) } });
    this.name = "BackpressureError";
  }
}

/** 503: Redis cannot be reached, or the service is not configured. */
export class UnavailableError extends HttpError {
  /** Creates a 503 error. */
  constructor(message: string, options?: ErrorOptions) {
    super(503, message, options);
    this.name = "UnavailableError";
  }
}

/** What stalled a group: the group and the dependency that failed. */
export interface StallDetails {
  /** Consumer group. */
  group: string;
  /** Dependency that failed, e.g. "sqlite", "postgresql" or "redis". */
  dependency: string;
  /** Seconds until the group should be tried again. */
  retryAfterSeconds: number;
}

/** 503: a group's dependency failed; its entries stay pending and nothing was dead-lettered. */
export class GroupStalledError extends HttpError {
  /** Creates a 503 error with Retry-After, naming the group and the dependency. */
  constructor(message: string, stall: StallDetails, options?: ErrorOptions) {
    super(503, message, {
      ...options,
      headers: { "Retry-After": String(stall.retryAfterSeconds) },
      details: { group: stall.group, dependency: stall.dependency },
    });
    this.name = "GroupStalledError";
  }
}

/** 409: STREAM_PARTITIONS differs from the layout the data is in, and entries still wait there. */
export class PartitionLayoutError extends HttpError {
  /** Creates a 409 error. */
  constructor(message: string, options?: ErrorOptions) {
    super(409, message, options);
    this.name = "PartitionLayoutError";
  }
}
