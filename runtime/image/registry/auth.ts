// Registry authentication as Docker does it: the registry answers 401 with a WWW-Authenticate
// challenge; for Basic we send the credentials, for Bearer we fetch a token from the challenge's
// realm for the repository scope (GET with basic credentials, or POST an identity token as an
// OAuth2 refresh token) and keep it per scope until it expires. Credentials come from the caller
// (CRI AuthConfig), the daemon config, or a docker config.json.
import { readFile } from "node:fs/promises";
import { InvalidArgumentError, UnauthenticatedError, UnavailableError } from "../../errors";
import type { RegistryAuth } from "../types";
import { describeResponse, type HttpResponse, type RetryPolicy, readBody, request, type TlsOptions } from "./http";

export interface Challenge {
  /** Lower case: "bearer", "basic". */
  scheme: string;
  /** Parameter names in lower case; values unquoted. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses WWW-Authenticate (RFC 7235): several challenges, possibly in one header, each a scheme
 * and comma-separated params whose quoted values may hold commas and escaped quotes.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseChallenges(h));
  const s = header;
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < s.length && chars.test(s[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TOKEN_CHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const quoted = (): string => {
    let out = "";
    i++; // opening quote
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      out += s[i++];
    }
    i++; // closing quote
    return out;
  };

  const challenges: Challenge[] = [];
  while (i < s.length) {
    skip(/[\s,]/);
    const scheme = token();
    if (!scheme) {
      i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    skip(/[ \t]/);
    for (;;) {
      const start = i;
      skip(/[\s,]/);
      const name = token();
      skip(/[ \t]/);
      if (!name || s[i] !== "=") {
        i = start; // not a parameter: the next challenge's scheme
        break;
      }
      i++;
      skip(/[ \t]/);
      if (s[i] === "=" || i >= s.length || s[i] === ",") {
        // token68 (e.g. "Negotiate abc=="): not a parameter, kept whole under "".
        let padding = "=";
        while (s[i] === "=") {
          padding += "=";
          i++;
        }
        challenge.params[""] = name + padding;
        continue;
      }
      challenge.params[name.toLowerCase()] = s[i] === '"' ? quoted() : token();
      skip(/[ \t]/);
    }
  }
  return challenges;
}

/** Username and password from username/password or the base64 `auth` field; undefined if neither. */
export function credentialsOf(auth: RegistryAuth | undefined): { username: string; password: string } | undefined {
  if (!auth) return undefined;
  if (auth.username) return { username: auth.username, password: auth.password ?? "" };
  if (!auth.auth) return undefined;
  const decoded = Buffer.from(auth.auth, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) throw new InvalidArgumentError(`registry auth: the "auth" field is not base64("username:password")`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** What was offered, for messages: 'the credentials of user "x"', "the identity token", … */
export function describeAuth(auth: RegistryAuth | undefined): string | undefined {
  if (auth?.registryToken) return "the registry token";
  if (auth?.identityToken) return "the identity token";
  const creds = credentialsOf(auth);
  return creds ? `the credentials of user "${creds.username}"` : undefined;
}

export function basicAuthorization(creds: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
}

const HUB_ALIASES = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/** The host of a config.json `auths` key: "https://index.docker.io/v1/" → "index.docker.io". */
function keyHost(key: string): string {
  return key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0]!.toLowerCase();
}

interface DockerConfigEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/**
 * Credentials for `host` in a docker config.json (`auths` keyed by host or URL). Undefined when
 * the file does not exist or has no usable entry for the host (credential helpers are not run).
 */
export async function loadDockerConfigAuth(path: string, host: string): Promise<RegistryAuth | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new InvalidArgumentError(`docker config ${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let parsed: { auths?: Record<string, DockerConfigEntry> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (err) {
    throw new InvalidArgumentError(`docker config ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const wanted = host.toLowerCase();
  const aliases = HUB_ALIASES.includes(wanted) ? HUB_ALIASES : [wanted];
  const entries = Object.entries(parsed?.auths ?? {});
  // An exact key wins over a URL form of the same host.
  const match = entries.find(([k]) => k.toLowerCase() === wanted) ?? entries.find(([k]) => aliases.includes(keyHost(k)));
  if (!match) return undefined;
  const e = match[1] ?? {};
  const auth: RegistryAuth = {};
  if (e.username) auth.username = e.username;
  if (e.password) auth.password = e.password;
  if (e.auth) auth.auth = e.auth;
  if (e.identitytoken) auth.identityToken = e.identitytoken;
  if (e.registrytoken) auth.registryToken = e.registrytoken;
  if (Object.keys(auth).length === 0) return undefined;
  // Fail here, naming the file, rather than at the first pull.
  try {
    credentialsOf(auth);
  } catch {
    throw new InvalidArgumentError(`docker config ${path}: the "auth" field for ${match[0]} is not base64("username:password")`);
  }
  return auth;
}

export interface AuthorizerOptions {
  /** For messages: the registry (or mirror) these credentials are for. */
  registry: string;
  auth?: RegistryAuth;
  userAgent: string;
  tls?: TlsOptions;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  now?: () => number;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

// Spec: a token without expires_in lasts 60 s. Refresh a little early so one never dies in flight.
const DEFAULT_TOKEN_TTL_S = 60;
const EXPIRY_SLACK_MS = 5_000;
const TOKEN_BODY_LIMIT = 1024 * 1024;

/** Authorization for one endpoint's requests: what its challenges asked for, tokens cached per scope. */
export class Authorizer {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly now: () => number;

  constructor(private readonly opts: AuthorizerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The Authorization header for a request needing `scopes`, or undefined to go anonymous first. */
  async authorization(scopes: string[]): Promise<string | undefined> {
    const { auth } = this.opts;
    if (auth?.registryToken) return `Bearer ${auth.registryToken}`;
    const ch = this.challenge;
    if (ch?.scheme === "bearer") return `Bearer ${await this.token(ch, scopes)}`;
    const creds = credentialsOf(auth);
    if (ch?.scheme === "basic" && creds) return basicAuthorization(creds);
    return undefined;
  }

  /**
   * Learns from a 401. True when a retry can succeed (a challenge we can answer and have not yet
   * answered with what we sent); false when it cannot. Throws UnauthenticatedError when the
   * registry wants Basic credentials and none were given.
   */
  async onUnauthorized(res: HttpResponse, scopes: string[], sent: string | undefined): Promise<boolean> {
    const challenges = parseChallenges(res.headers["www-authenticate"]);
    const ch = challenges.find((c) => c.scheme === "bearer" && c.params.realm) ?? challenges.find((c) => c.scheme === "basic");
    // A registry token is all we have: once refused, nothing else is worth sending.
    if (!ch || this.opts.auth?.registryToken) return false;
    this.challenge = ch;
    if (ch.scheme === "basic") {
      const creds = credentialsOf(this.opts.auth);
      if (!creds) return false;
      return sent !== basicAuthorization(creds);
    }
    if (sent?.startsWith("Bearer ")) {
      // The token we sent was refused (expired early, or revoked): the next one must be fresh.
      this.tokens.delete(this.cacheKey(ch, scopes));
    }
    return true;
  }

  private cacheKey(ch: Challenge, scopes: string[]): string {
    return `${ch.params.realm}|${ch.params.service ?? ""}|${[...new Set(scopes)].sort().join(" ")}`;
  }

  private async token(ch: Challenge, scopes: string[]): Promise<string> {
    // A scope the registry named in its challenge is what it will check: ask for it too.
    const all = [...new Set([...scopes, ...(ch.params.scope ? ch.params.scope.split(" ") : [])])];
    const key = this.cacheKey(ch, all);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) return cached.token;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchToken(ch, all)
        .then((t) => {
          this.tokens.set(key, t);
          return t.token;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(ch: Challenge, scopes: string[]): Promise<CachedToken> {
    const fetchedAt = this.now();
    const realm = ch.params.realm!;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UnauthenticatedError(`registry ${this.opts.registry}: its Bearer challenge names realm "${realm}", which is not a URL`);
    }
    const service = ch.params.service;
    const creds = credentialsOf(this.opts.auth);
    const identityToken = this.opts.auth?.identityToken;
    const headers: Record<string, string> = { "user-agent": this.opts.userAgent, accept: "application/json" };
    const common = { tls: this.opts.tls, timeoutMs: this.opts.timeoutMs, retry: this.opts.retry };
    let res: HttpResponse;
    if (identityToken) {
      // Docker's OAuth2 flow: the identity token is a refresh token.
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: identityToken, client_id: "berth" });
      if (service) form.set("service", service);
      if (scopes.length) form.set("scope", scopes.join(" "));
      headers["content-type"] = "application/x-www-form-urlencoded";
      res = await request({ method: "POST", url, headers, body: Buffer.from(form.toString()), ...common });
    } else {
      if (service) url.searchParams.set("service", service);
      for (const scope of scopes) url.searchParams.append("scope", scope);
      if (creds) {
        url.searchParams.set("account", creds.username);
        headers.authorization = basicAuthorization(creds);
      }
      res = await request({ method: "GET", url, headers, ...common });
    }
    const who = describeAuth(this.opts.auth) ?? "anonymous access";
    if (res.status === 401 || res.status === 403) {
      throw new UnauthenticatedError(`registry ${this.opts.registry}: the token server refused ${who} for ${scopes.join(" ") || "the registry"}: ${await describeResponse(res)}`);
    }
    if (res.status !== 200) {
      throw new UnavailableError(`registry ${this.opts.registry}: fetching a token failed: ${await describeResponse(res)}`);
    }
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse((await readBody(res, TOKEN_BODY_LIMIT)).toString("utf8")) as typeof body;
    } catch (err) {
      throw new UnavailableError(`registry ${this.opts.registry}: the token server ${url.origin} answered something that is not a token: ${(err as Error).message}`, { cause: err });
    }
    const token = body.token || body.access_token;
    if (!token) throw new UnavailableError(`registry ${this.opts.registry}: the token server ${url.origin} answered without a token`);
    const ttl = (typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_TTL_S) * 1000;
    // Counted from our own clock, when we asked: issued_at from a skewed server would mislead.
    return { token, expiresAt: fetchedAt + Math.max(ttl / 2, ttl - EXPIRY_SLACK_MS) };
  }
}
