// Single-use tokens for streaming URLs, as kubelet's streaming server hands them out: about 8
// URL-safe characters, valid for one minute, at most 1000 outstanding. The token stands for the
// cached CRI request, so a client cannot change what it asked for by editing the URL.
import { randomBytes } from "node:crypto";
import { ResourceExhaustedError } from "../../runtime/errors";

export const TOKEN_TTL_MS = 60_000;
export const MAX_TOKENS = 1000;

export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; expires: number }>();

  constructor(
    private readonly ttlMs = TOKEN_TTL_MS,
    private readonly max = MAX_TOKENS,
    private readonly now: () => number = Date.now,
  ) {}

  insert(value: T): string {
    this.evictExpired();
    if (this.entries.size >= this.max) throw new ResourceExhaustedError(`too many outstanding streaming requests (${this.max}); try again in a minute`);
    let token: string;
    do token = randomBytes(6).toString("base64url");
    while (this.entries.has(token));
    this.entries.set(token, { value, expires: this.now() + this.ttlMs });
    return token;
  }

  /** The value, once: a second use or an expired token gives undefined. */
  consume(token: string): T | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    return e.expires > this.now() ? e.value : undefined;
  }

  get size(): number {
    this.evictExpired();
    return this.entries.size;
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [k, e] of this.entries) if (e.expires <= now) this.entries.delete(k);
  }
}
