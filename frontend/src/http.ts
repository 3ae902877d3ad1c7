/**
 * The HTTP rules under {@link ApiClient} (./api.ts): API errors as {@link ApiError}, which
 * failed requests are sent again and how long to wait first, the CSRF header, and query strings.
 */

import type { FieldErrors } from './schemas';

/** An error answered by the API, or (status 0) a request that did not reach it. */
export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldErrors | null;
  readonly retryAfterS: number | null;

  constructor(status: number, title: string, detail: string, errors: FieldErrors | null = null,
              retryAfterS: number | null = null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
    this.retryAfterS = retryAfterS;
  }

  /** Messages for one field of a 422 (for example `fieldMessages('username')`). */
  fieldMessages(field: string, location = 'json'): string[] {
    const messages = this.errors?.[location]?.[field];
    if (Array.isArray(messages)) return messages.map(String);
    if (messages && typeof messages === 'object') return [JSON.stringify(messages)];
    return messages === undefined ? [] : [String(messages)];
  }

  /** Build the error of a non-2xx response, whatever its body (JSON error, HTML, empty). */
  static async fromResponse(response: Response): Promise<ApiError> {
    const retryAfter = Number(response.headers.get('Retry-After'));
    const retryAfterS = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null;
    const title = response.statusText || `HTTP ${response.status}`;
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      // not JSON: a proxy's HTML page, or no body
    }
    if (body && typeof body === 'object' && 'detail' in body) {
      const b = body as { title?: unknown; detail?: unknown; errors?: unknown };
      return new ApiError(
        response.status,
        typeof b.title === 'string' ? b.title : title,
        String(b.detail),
        b.errors && typeof b.errors === 'object' ? (b.errors as FieldErrors) : null,
        retryAfterS,
      );
    }
    return new ApiError(response.status, title,
                        `the server answered ${response.status} ${title}`, null, retryAfterS);
  }

  static network(cause: unknown): ApiError {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return new ApiError(0, 'Network error',
                        `the server could not be reached (${reason}); check the connection ` +
                        'and try again');
  }
}

export const CSRF_HEADER = 'X-CSRF-Token';
export const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
const RETRY_STATUSES = new Set([0, 502, 503, 504]);
/** Waits before the 1st and 2nd retry; a Retry-After header (capped) wins. */
export const RETRY_DELAYS_MS: readonly number[] = [300, 1500];
export const RETRY_AFTER_CAP_MS = 10_000;

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type QueryValue = string | number | boolean | null | undefined;
/** A query's parameters; a list is sent as the parameter repeated (`value=a&value=b`). */
export type Query = Record<string, QueryValue | readonly (string | number)[]>;

export interface RequestOptions {
  body?: unknown;
  query?: Query;
  signal?: AbortSignal;
}

export interface ClientOptions {
  baseUrl?: string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/** Whether a failed request may be sent again (see the module's docstring). */
export function isRetryable(method: string, error: ApiError): boolean {
  return IDEMPOTENT_METHODS.has(method) && RETRY_STATUSES.has(error.status);
}

export function isStaleCsrf(error: ApiError): boolean {
  return error.status === 403 && error.detail.includes(CSRF_HEADER);
}

export function buildQuery(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (Array.isArray(value)) for (const item of value) params.append(key, String(item));
    else if (value !== undefined && value !== null) params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}
