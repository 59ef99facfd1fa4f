/**
 * The error taxonomy every service shares. `retriable` says whether trying again can succeed:
 * validation and signature errors never can; dependency errors (Kafka, registry, Redis) can.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retriable: boolean,
    readonly httpStatus: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(code: string, message: string, options?: { cause?: unknown; httpStatus?: number }) {
    super(code, message, false, options?.httpStatus ?? 400, options);
  }
}

export class AuthenticationError extends AppError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, false, 401, options);
  }
}

export class DependencyError extends AppError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, true, 503, options);
  }
}

/**
 * True when trying again cannot succeed: an {@link AppError} that is not retriable (validation, signature).
 * Anything else (dependency errors, errors from libraries) counts as worth retrying.
 */
export function isPermanent(error: unknown): boolean {
  return error instanceof AppError && !error.retriable;
}

/** The one place that maps any thrown value to an HTTP status and a JSON error body. */
export function toHttpError(error: unknown): {
  status: number;
  body: { error: { code: string; message: string } };
} {
  if (error instanceof AppError) {
    return { status: error.httpStatus, body: { error: { code: error.code, message: error.message } } };
  }
  return { status: 500, body: { error: { code: 'internal_error', message: 'internal error' } } };
}

/**
 * Resolves or rejects like `promise`, but rejects with a retriable {@link DependencyError} `code` once
 * `timeoutMs` passes first. The underlying work is not cancelled: callers that care attach to `promise`.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  code: string,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DependencyError(code, `${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
