// One HTTP(S) request to a registry, with what a flaky network needs: per-host TLS options, an
// idle timeout, retries with exponential backoff and jitter on 5xx and on broken connections,
// 429 honoured through Retry-After, redirects. Bodies stream both ways: a blob is never held in
// memory. Errors that end a request are berth's typed errors, naming the URL and the status.
import { readFileSync } from "node:fs";
import http, { type IncomingHttpHeaders, type IncomingMessage, STATUS_CODES } from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { rootCertificates } from "node:tls";
import { InvalidArgumentError, ResourceExhaustedError, UnavailableError } from "../../errors";

export interface TlsOptions {
  /** PEM file of a CA to trust in addition to the system's. */
  caFile?: string;
  insecureSkipVerify?: boolean;
}

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A 429 whose Retry-After asks for longer than this ends the request. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 };
export const DEFAULT_TIMEOUT_MS = 30_000;

/** A body that can be sent again: bytes, or a stream factory with its length (called once per attempt). */
export type RequestBody = Buffer | { length: number; open: () => Readable };

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  tls?: TlsOptions;
  /** Socket idle time before the attempt fails (while connecting, sending or receiving). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Redirects to follow; Authorization is dropped when one leaves the origin. Default 0. */
  maxRedirects?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: URL;
  method: HttpRequest["method"];
  /** Consume or `discard` it: an unread body holds its connection. */
  body: IncomingMessage;
}

// Connection failures a later attempt can get past; certificate and protocol errors cannot.
const TRANSIENT_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);
const TLS_TRUST_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const ERROR_BODY_LIMIT = 64 * 1024;

export function isTransientNetworkError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.name === "AbortError") return false; // our caller's choice, not the network's
  return TRANSIENT_CODES.has(e?.code ?? "") || /socket hang up|aborted/i.test(e?.message ?? "");
}

const agents = new Map<string, http.Agent>();

function agentFor(url: URL, tls: TlsOptions | undefined): http.Agent {
  const secure = url.protocol === "https:";
  const key = secure ? `https|${tls?.caFile ?? ""}|${tls?.insecureSkipVerify ? 1 : 0}` : "http";
  let agent = agents.get(key);
  if (!agent) {
    if (!secure) {
      agent = new http.Agent({ keepAlive: true });
    } else {
      let ca: string[] | undefined;
      if (tls?.caFile) {
        try {
          // Node's `ca` replaces the system roots; a registry CA is meant to be added to them.
          ca = [...rootCertificates, readFileSync(tls.caFile, "utf8")];
        } catch (err) {
          throw new InvalidArgumentError(`CA file ${tls.caFile} configured for ${url.host} cannot be read: ${(err as Error).message}`, { cause: err });
        }
      }
      agent = new https.Agent({ keepAlive: true, ca, rejectUnauthorized: !tls?.insecureSkipVerify });
    }
    agents.set(key, agent);
  }
  return agent;
}

/** One attempt: resolves with the response head, the body left to the caller. */
function attempt(req: HttpRequest, url: URL, headers: Record<string, string>, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === "https:" ? https : http;
    const all: Record<string, string> = { ...headers };
    if (req.body !== undefined) all["content-length"] = String(req.body.length);
    else if (req.method === "POST" || req.method === "PUT" || req.method === "PATCH") all["content-length"] = "0";
    const r = mod.request(url, { method: req.method, headers: all, agent: agentFor(url, req.tls), signal: req.signal });
    r.setTimeout(timeoutMs, () => r.destroy(Object.assign(new Error(`no data for ${timeoutMs} ms (timeout)`), { code: "ETIMEDOUT" })));
    r.on("response", resolve);
    r.on("error", reject);
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else pipeline(req.body.open(), r).catch((err) => r.destroy(err as Error));
  });
}

function describeNetworkError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? "";
  if (TLS_TRUST_CODES.has(code)) return `${err.message} (${code}): the registry's certificate is not trusted; configure caFile for it, or insecureSkipVerify`;
  if (code === "EPROTO" && /wrong version number|packet length too long/i.test(err.message)) {
    return "TLS handshake failed (EPROTO, wrong version number): the endpoint may speak plain HTTP; mark the registry insecure to use http://";
  }
  return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
}

/** Seconds or an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function backoff(policy: RetryPolicy, failedAttempt: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failedAttempt - 1));
  // Full jitter on the upper half: clients that failed together do not come back together.
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Drains and drops a body we will not read, so its connection can be reused. */
export function discard(res: HttpResponse): void {
  res.body.on("error", () => {});
  res.body.resume();
}

/** Reads a small body whole; fails past `limit` bytes without reading further. */
export async function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const declared = Number(res.headers["content-length"] ?? Number.NaN);
  if (declared > limit) {
    res.body.destroy();
    throw new RangeError(`${res.method} ${displayUrl(res.url)} answered ${declared} bytes, over the ${limit} byte limit`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      res.body.destroy();
      throw new RangeError(`${res.method} ${displayUrl(res.url)} answered more than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The registry's `errors[].code: message` from an error body, or its text when it is not that JSON. */
export function registryErrorDetail(body: Buffer): string {
  const text = body.toString("utf8").trim();
  if (!text) return "";
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    if (Array.isArray(parsed.errors) && parsed.errors.length) {
      return parsed.errors.map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ");
    }
  } catch {}
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** "GET URL answered 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)", reading the error body. */
export async function describeResponse(res: HttpResponse): Promise<string> {
  let detail = "";
  if (res.method !== "HEAD") {
    try {
      detail = registryErrorDetail(await readBody(res, ERROR_BODY_LIMIT));
    } catch {}
  } else {
    discard(res);
  }
  return `${res.method} ${displayUrl(res.url)} answered ${res.status} ${STATUS_CODES[res.status] ?? ""}`.trimEnd() + (detail ? ` (${detail})` : "");
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A URL for messages: no query, which may carry an upload's state or a storage signature. */
export function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * Sends a request, retrying 5xx (except 501), 429 (after Retry-After) and broken connections.
 * Any other status comes back to the caller. Throws UnavailableError when the attempts run out,
 * ResourceExhaustedError for a 429 that asks for too long a wait.
 */
export async function request(req: HttpRequest): Promise<HttpResponse> {
  const policy = { ...DEFAULT_RETRY, ...req.retry };
  const attempts = Math.max(1, policy.attempts);
  const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let url = req.url;
  let method = req.method;
  let payload = req.body;
  let headers = { ...req.headers };
  let redirectsLeft = req.maxRedirects ?? 0;

  for (let n = 1; ; n++) {
    let body: IncomingMessage;
    try {
      body = await attempt({ ...req, method, body: payload }, url, headers, timeoutMs);
    } catch (err) {
      if (req.signal?.aborted) throw err;
      if (isTransientNetworkError(err) && n < attempts) {
        await sleep(backoff(policy, n), undefined, { signal: req.signal });
        continue;
      }
      if (err instanceof InvalidArgumentError) throw err;
      const times = n > 1 ? ` (gave up after ${n} attempts)` : "";
      throw new UnavailableError(`${method} ${displayUrl(url)} failed: ${describeNetworkError(err as NodeJS.ErrnoException)}${times}`, { cause: err });
    }
    const res: HttpResponse = { status: body.statusCode ?? 0, headers: body.headers, url, method, body };

    if (REDIRECTS.has(res.status) && redirectsLeft > 0 && res.headers.location) {
      discard(res);
      redirectsLeft--;
      const next = new URL(res.headers.location, url);
      // Credentials for the registry must not reach the storage backend it redirects to.
      if (next.origin !== url.origin) {
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      if (res.status === 303) {
        method = "GET";
        payload = undefined;
      }
      url = next;
      n--; // a redirect is not a failed attempt
      continue;
    }
    if (res.status >= 500 && res.status !== 501) {
      if (n < attempts) {
        discard(res);
        await sleep(backoff(policy, n), undefined, { signal: req.signal });
        continue;
      }
      throw new UnavailableError(`${await describeResponse(res)}, ${n} attempt(s)`);
    }
    if (res.status === 429) {
      const wait = parseRetryAfter(res.headers["retry-after"] as string | undefined) ?? backoff(policy, n);
      if (n < attempts && wait <= policy.maxRetryAfterMs) {
        discard(res);
        await sleep(wait, undefined, { signal: req.signal });
        continue;
      }
      const why = wait > policy.maxRetryAfterMs ? `asked to retry after ${Math.ceil(wait / 1000)} s, over the ${Math.ceil(policy.maxRetryAfterMs / 1000)} s limit` : `${n} attempt(s)`;
      throw new ResourceExhaustedError(`the registry is rate-limiting: ${await describeResponse(res)}, ${why}`);
    }
    return res;
  }
}
