/** Stable machine-readable error codes; the API maps them to HTTP status, RADIUS to a Reject. */
export type AppErrorCode =
  | 'not_found'
  | 'conflict'
  | 'invalid'
  | 'insufficient_funds'
  | 'account_disabled'
  | 'forbidden'
  | 'unauthorized'
  | 'unavailable';

/** A domain error whose message is safe to show to the caller. */
export class AppError extends Error {
  constructor(
    readonly code: AppErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
