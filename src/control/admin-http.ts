/**
 * The admin API's HTTP vocabulary: errors as answers (HttpError), JSON answers, request checks
 * (methods, paths, bodies, paging), the token file, and the HTTP listener the admin server
 * needs (declared here; app passes dataplane/http-listener.ts's listenHttp).
 */
import type { Address } from '../core/address.ts';
import type { FieldIssue } from '../config/yaml/admin-api.ts';
import type { Diagnostics } from './observed.ts';
import { FulcrumError } from '../core/errors.ts';

/** node:fs, taken on first use: not loaded at rest (docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

/** An HTTP listener: binds `address` and answers every request with `fetch`. */
export interface HttpListener {
  /** The bound TCP port; 0 on a Unix socket. */
  readonly port: number;
  stop(): Promise<void>;
}

export type HttpListen = (o: {
  address: Address;
  fetch(req: Request, noTimeout: (req: Request) => void): Response | Promise<Response>;
  error(e: Error): Response;
  /** A declared body (Content-Length) larger than this is answered with `tooLarge` before `fetch`. */
  maxRequestBodySize: number;
  /** The answer to a body over the limit (the runtime's own limit would just close the connection). */
  tooLarge(): Response;
  idleTimeoutS: number;
}) => HttpListener;

/** The largest request body the API reads (a server is a few hundred bytes of JSON). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Tokens shorter than this are refused: the token is the only thing guarding changes. */
export const MIN_TOKEN_LENGTH = 16;

export class AdminError extends FulcrumError {
  override readonly name = 'AdminError';

  constructor(message: string, options?: ErrorOptions) {
    super('E_ADMIN', message, options);
  }
}

/** An answer in the making: thrown by handlers to end a request with an error. */
export class HttpError extends FulcrumError {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    /** The API's own error code in the JSON answer (`not_found`, `invalid`, ...). */
    readonly apiCode: string,
    message: string,
    readonly issues: FieldIssue[] | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super('E_ADMIN_REQUEST', message);
  }
}

export const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + '\n', { status, headers: JSON_HEADERS });
}

export function errorResponse(e: HttpError): Response {
  const body: Record<string, unknown> = { code: e.apiCode, message: e.message };
  if (e.issues !== null) body.issues = e.issues;
  return new Response(JSON.stringify({ error: body }, null, 2) + '\n', { status: e.status, headers: { ...JSON_HEADERS, ...e.headers } });
}

export function digest(text: string): Buffer {
  // node:crypto (about 6 MB resident) loads here, when a token is checked, not with this module.
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(text).digest();
}

/** Reads and checks a token file; throws AdminError with the reason. */
export function readTokenFile(path: string, diag?: Diagnostics): string {
  let text: string;
  try {
    text = fs().readFileSync(path, 'utf8');
  } catch (e) {
    throw new AdminError(`cannot read the admin token file ${path}: ${(e as Error).message}`);
  }
  const token = text.trim();
  if (token === '') throw new AdminError(`the admin token file ${path} is empty`);
  if (/\s/.test(token)) throw new AdminError(`the admin token file ${path} must hold one token (no spaces or line breaks inside it)`);
  if (token.length < MIN_TOKEN_LENGTH) throw new AdminError(`the admin token in ${path} is too short: use at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)`);
  try {
    if ((fs().statSync(path).mode & 0o077) !== 0) diag?.info(`warning: the admin token file ${path} can be read by other users; chmod 600 it`);
  } catch {
    // read above, so it exists; a stat failure here changes nothing
  }
  return token;
}

export function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) {
    throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${methods.join(', ')}`, null, { allow: methods.join(', ') });
  }
}

export function decodePart(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new HttpError(400, 'invalid_request', `bad percent-encoding in the path: ${p}`);
  }
}

export function invalid(issues: FieldIssue[]): HttpError {
  const summary = issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; ');
  return new HttpError(422, 'validation_failed', summary, issues);
}

export function bodyTooLarge(max: number = MAX_BODY_BYTES): HttpError {
  return new HttpError(413, 'body_too_large', `the request body is larger than ${max} bytes`, null, { connection: 'close' });
}

/**
 * The body as text, at most `max` bytes: a declared length over it is refused unread, and a
 * chunked body is read only until it grows past it (then the rest is dropped with the connection).
 */
async function readBody(req: Request, max: number): Promise<string> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > max) throw bodyTooLarge(max);
  if (req.body === null) return '';
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw bodyTooLarge(max);
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString('utf8');
}

export async function readJson(req: Request, max: number = MAX_BODY_BYTES): Promise<unknown> {
  const text = await readBody(req, max);
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'the request needs a JSON body');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `the body is not valid JSON: ${(e as Error).message}`);
  }
}

export function paging(query: URLSearchParams): { offset: number; limit: number } {
  const issues: FieldIssue[] = [];
  const num = (name: string, dflt: number, min: number, max: number): number => {
    const v = query.get(name);
    if (v === null) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      issues.push({ path: name, message: `expected an integer ${min}-${max}, got ${JSON.stringify(v)}` });
      return dflt;
    }
    return Number(v);
  };
  const offset = num('offset', 0, 0, Number.MAX_SAFE_INTEGER);
  const limit = num('limit', 100, 1, 1000);
  if (issues.length > 0) throw new HttpError(400, 'invalid_request', issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
  return { offset, limit };
}
