import type { AppErrorCode } from '../errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** One bad field of a request, as listed in a validation problem. */
export interface FieldError {
  /** Where the field was: body, querystring, params or headers (or `row` for an import). */
  readonly in: string;
  /** Dotted path of the field inside it, e.g. `amountFen` or `areaRules.0.pattern`. */
  readonly path: string;
  readonly message: string;
}

/** An RFC 9457 problem details body, with our stable `code` and optional extension members. */
export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly instance?: string;
  readonly requestId?: string;
  readonly errors?: readonly FieldError[];
  readonly [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Domain error codes as HTTP statuses; the one mapping from the money core's errors to HTTP. */
export const STATUS_OF_CODE: Record<AppErrorCode, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  account_disabled: 409,
  insufficient_funds: 422,
  unavailable: 503,
};

/** `type` is a URN per code: stable, dereferences nowhere, and says what kind of problem it is. */
export function problemType(code: string): string {
  return `urn:campus-aaa:problem:${code}`;
}

export function problemBody(status: number, code: string, detail: string, extensions: Record<string, unknown> = {}): ProblemBody {
  return { type: problemType(code), title: TITLES[status] ?? 'Error', status, detail, code, ...extensions };
}

/**
 * An HTTP-level refusal that is not a money-core error (a clock that is not simulated, an import with
 * rejected rows): carries its status, stable code and extension members.
 */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'ApiProblem';
  }
}
