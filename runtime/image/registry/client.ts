// The OCI distribution client for one registry host: resolves tags through the host's mirrors
// then the host itself, fetches manifests (verified against their digest) and blobs (streamed,
// resumable with a Range request), pushes blobs and manifests. Every request goes through the
// endpoint's Authorizer: a 401 with a challenge gets credentials or a token and one retry.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { DataLossError, InvalidArgumentError, NotFoundError, PermissionDeniedError, UnauthenticatedError, UnavailableError } from "../../errors";
import { formatReference, repositoryName, validateDigest } from "../reference";
import {
  type BlobFetch,
  type BlobFetchOptions,
  type Descriptor,
  type ImageReference,
  INDEX_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  MediaType,
  type RegistryAuth,
  type RegistryClient,
  type RegistryEndpoint,
  type ResolvedReference,
} from "../types";
import { Authorizer, describeAuth } from "./auth";
import { endpointsOf, type HostConfig, selfEndpoint } from "./hosts";
import { describeResponse, discard, displayUrl, type HttpRequest, type HttpResponse, type RetryPolicy, readBody, request } from "./http";

export interface DistributionClientOptions {
  hosts: HostConfig;
  /** Credentials from the caller (CRI AuthConfig); they win over the config's for the host itself, never go to mirrors. */
  auth?: RegistryAuth;
  userAgent?: string;
  retry?: Partial<RetryPolicy>;
  /** Socket idle timeout per request. */
  timeoutMs?: number;
}

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MANIFEST_ACCEPT = [MediaType.OCIIndex, MediaType.OCIManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(", ");
const MAX_REDIRECTS = 5;

type Action = "pull" | "pull,push";

function digestOf(data: Uint8Array, algorithm: string): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

function algorithmOf(digest: string): string {
  return digest.slice(0, digest.indexOf(":"));
}

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function contentType(res: HttpResponse): string | undefined {
  return header(res, "content-type")?.split(";")[0]?.trim() || undefined;
}

/** The media type a manifest's bytes declare, or what their shape says when they declare none. */
function mediaTypeOfBody(data: Buffer): string | undefined {
  try {
    const doc = JSON.parse(data.toString("utf8")) as { mediaType?: string; manifests?: unknown; config?: unknown };
    if (typeof doc.mediaType === "string" && doc.mediaType) return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MediaType.OCIIndex;
    if (doc.config) return MediaType.OCIManifest;
  } catch {}
  return undefined;
}

function isManifestType(t: string | undefined): t is string {
  return t !== undefined && (MANIFEST_MEDIA_TYPES.includes(t) || INDEX_MEDIA_TYPES.includes(t));
}

export class DistributionClient implements RegistryClient {
  private readonly authorizers = new Map<string, Authorizer>();
  private readonly userAgent: string;

  constructor(private readonly opts: DistributionClientOptions) {
    this.userAgent = opts.userAgent ?? "berth";
  }

  async resolve(ref: ImageReference): Promise<ResolvedReference> {
    if (ref.digest) validateDigest(ref.digest, formatReference(ref));
    const endpoints = endpointsOf(this.opts.hosts);
    const what = formatReference(ref);
    const failures: string[] = [];
    for (let i = 0; ; i++) {
      const ep = endpoints[i]!;
      try {
        return await this.resolveAt(ep, ref);
      } catch (err) {
        // A mirror that is down or lacks the image is skipped; the last endpoint's answer decides the code.
        if (!(err instanceof UnavailableError || err instanceof NotFoundError)) throw err;
        failures.push(this.isSelf(ep) ? err.message : `mirror ${ep.url}: ${err.message}`);
        if (i < endpoints.length - 1) continue;
        // A lone host: its own answer, naming the image when a network error did not.
        if (endpoints.length === 1 && this.isSelf(ep)) {
          if (!err.message.includes(what)) err.message = `${what}: ${err.message}`;
          throw err;
        }
        const tried = this.opts.hosts.skipSelf ? "its mirrors (skipSelf: never the host itself)" : "its mirrors, then the host itself";
        const message = `${what}: no endpoint of registry ${this.opts.hosts.host} could serve it; tried ${tried}: ${failures.join("; ")}`;
        throw err instanceof NotFoundError ? new NotFoundError(message, { cause: err }) : new UnavailableError(message, { cause: err });
      }
    }
  }

  async fetchManifest(resolved: ResolvedReference, digest: string): Promise<{ mediaType: string; data: Buffer }> {
    const { ref, endpoint: ep } = resolved;
    validateDigest(digest, `${repositoryName(ref)}@${digest}`);
    const what = `manifest ${repositoryName(ref)}@${digest}`;
    const res = await this.send(ep, ref, "pull", { method: "GET", url: this.url(ep, ref, `manifests/${digest}`), headers: { accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) return this.fail(res, what, ep);
    const data = await this.readManifest(res, what);
    const got = digestOf(data, algorithmOf(digest));
    if (got !== digest) throw new DataLossError(`${what}: ${displayUrl(res.url)} served bytes whose digest is ${got}`);
    const declared = contentType(res);
    return { mediaType: (isManifestType(declared) ? declared : mediaTypeOfBody(data)) ?? declared ?? "", data };
  }

  async fetchBlob(resolved: ResolvedReference, desc: Descriptor, opts: BlobFetchOptions = {}): Promise<BlobFetch> {
    const { ref, endpoint: ep } = resolved;
    validateDigest(desc.digest, `${repositoryName(ref)}@${desc.digest}`);
    const what = `blob ${desc.digest} of ${repositoryName(ref)}`;
    const offset = opts.offset ?? 0;
    const get = (from: number) =>
      this.send(ep, ref, "pull", {
        method: "GET",
        url: this.url(ep, ref, `blobs/${desc.digest}`),
        headers: from > 0 ? { range: `bytes=${from}-` } : {},
        maxRedirects: MAX_REDIRECTS,
        signal: opts.signal,
      });
    let res = await get(offset);
    if (res.status === 416 && offset > 0) {
      // The registry cannot serve that range: start over rather than fail the pull.
      discard(res);
      res = await get(0);
    }
    if (res.status === 200) return { offset: 0, body: res.body };
    if (res.status === 206 && offset > 0) {
      const range = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header(res, "content-range") ?? "");
      const start = range ? Number(range[1]) : Number.NaN;
      if (start !== offset) {
        res.body.destroy();
        throw new UnavailableError(`${what}: asked ${displayUrl(res.url)} for bytes ${offset}- and got Content-Range "${header(res, "content-range") ?? ""}"`);
      }
      return { offset, body: res.body };
    }
    return this.fail(res, what, ep);
  }

  async pushBlob(ref: ImageReference, desc: Descriptor, open: () => Readable): Promise<void> {
    validateDigest(desc.digest, `${repositoryName(ref)}@${desc.digest}`);
    const ep = selfEndpoint(this.opts.hosts);
    const what = `pushing blob ${desc.digest} to ${repositoryName(ref)}`;
    const head = await this.send(ep, ref, "pull,push", { method: "HEAD", url: this.url(ep, ref, `blobs/${desc.digest}`) });
    if (head.status === 200) {
      discard(head);
      return;
    }
    if (head.status !== 404) return this.fail(head, what, ep);
    discard(head);

    const start = await this.send(ep, ref, "pull,push", { method: "POST", url: this.url(ep, ref, "blobs/uploads/") });
    const location = header(start, "location");
    if (start.status !== 202 || !location) {
      if (start.status === 202) discard(start);
      return this.fail(start, `${what}: starting the upload${start.status === 202 ? " (the registry gave no Location)" : ""}`, ep);
    }
    discard(start);
    // The upload URL carries the registry's own state in its query: append, never re-encode it.
    const upload = new URL(location, start.url);
    const put = new URL(`${upload.href}${upload.search ? "&" : "?"}digest=${encodeURIComponent(desc.digest)}`);
    const done = await this.send(ep, ref, "pull,push", {
      method: "PUT",
      url: put,
      headers: { "content-type": "application/octet-stream" },
      body: { length: desc.size, open },
    });
    if (done.status !== 201 && done.status !== 204) return this.fail(done, what, ep);
    discard(done);
  }

  async pushManifest(ref: ImageReference, mediaType: string, data: Buffer): Promise<string> {
    const computed = digestOf(data, ref.digest ? algorithmOf(validateDigest(ref.digest, formatReference(ref))) : "sha256");
    if (ref.digest && computed !== ref.digest) {
      throw new InvalidArgumentError(`pushing ${formatReference(ref)}: the manifest's digest is ${computed}, not the ${ref.digest} the reference names`);
    }
    const ep = selfEndpoint(this.opts.hosts);
    const target = ref.tag ?? ref.digest ?? computed;
    const what = `pushing manifest ${formatReference(ref)}`;
    const res = await this.send(ep, ref, "pull,push", {
      method: "PUT",
      url: this.url(ep, ref, `manifests/${target}`),
      headers: { "content-type": mediaType },
      body: data,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 204) return this.fail(res, what, ep);
    discard(res);
    const answered = header(res, "docker-content-digest");
    if (answered && answered !== computed) throw new DataLossError(`${what}: the registry stored it as ${answered}, but its bytes hash to ${computed}`);
    return computed;
  }

  private async resolveAt(ep: RegistryEndpoint, ref: ImageReference): Promise<ResolvedReference> {
    const target = ref.digest ?? ref.tag ?? "latest";
    const url = this.url(ep, ref, `manifests/${target}`);
    const what = formatReference(ref);
    const head = await this.send(ep, ref, "pull", { method: "HEAD", url, headers: { accept: MANIFEST_ACCEPT } });
    discard(head);
    const headDigest = header(head, "docker-content-digest");
    const headType = contentType(head);
    const headSize = Number(header(head, "content-length") ?? Number.NaN);
    if (head.status === 200 && (headDigest || ref.digest) && isManifestType(headType) && Number.isSafeInteger(headSize)) {
      const digest = this.checkAnswered(what, head, ref.digest, headDigest) ?? headDigest!;
      return { ref, digest, descriptor: { mediaType: headType, digest, size: headSize }, endpoint: ep };
    }
    // A HEAD without what we need (or refused) is asked again as GET, whose body settles the
    // digest and whose error body explains a failure.
    const res = await this.send(ep, ref, "pull", { method: "GET", url, headers: { accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) return this.fail(res, what, ep);
    const data = await this.readManifest(res, what);
    const answered = header(res, "docker-content-digest");
    const computed = digestOf(data, ref.digest ? algorithmOf(ref.digest) : "sha256");
    if (ref.digest && computed !== ref.digest) throw new DataLossError(`${what}: ${displayUrl(res.url)} served a manifest whose digest is ${computed}`);
    // A header in another algorithm than ours cannot be checked here; the bytes are what count.
    if (answered && algorithmOf(answered) === algorithmOf(computed) && answered !== computed) throw new DataLossError(`${what}: ${displayUrl(res.url)} says its digest is ${answered}, but its bytes hash to ${computed}`);
    const declared = contentType(res);
    const mediaType = (isManifestType(declared) ? declared : mediaTypeOfBody(data)) ?? declared ?? "";
    return { ref, digest: computed, descriptor: { mediaType, digest: computed, size: data.length }, endpoint: ep };
  }

  /** With a digest in the reference, what the registry says must agree with it. */
  private checkAnswered(what: string, res: HttpResponse, wanted: string | undefined, answered: string | undefined): string | undefined {
    if (answered) {
      try {
        validateDigest(answered);
      } catch (err) {
        throw new DataLossError(`${what}: ${displayUrl(res.url)} answered Docker-Content-Digest "${answered}": ${(err as Error).message}`);
      }
    }
    if (wanted && answered && answered !== wanted) throw new DataLossError(`${what}: ${displayUrl(res.url)} answered with digest ${answered}`);
    return wanted;
  }

  private async readManifest(res: HttpResponse, what: string): Promise<Buffer> {
    try {
      return await readBody(res, MAX_MANIFEST_BYTES);
    } catch (err) {
      if (err instanceof RangeError) throw new DataLossError(`${what}: ${err.message} (manifests are limited to ${MAX_MANIFEST_BYTES} bytes)`);
      throw new UnavailableError(`${what}: reading ${displayUrl(res.url)}: ${(err as Error).message}`, { cause: err });
    }
  }

  private repoPath(ep: RegistryEndpoint, ref: ImageReference): string {
    return ep.pathPrefix ? `${ep.pathPrefix}/${ref.path}` : ref.path;
  }

  private url(ep: RegistryEndpoint, ref: ImageReference, suffix: string): URL {
    return new URL(`${ep.url.replace(/\/+$/, "")}/v2/${this.repoPath(ep, ref)}/${suffix}`);
  }

  private isSelf(ep: RegistryEndpoint): boolean {
    return ep.url === selfEndpoint(this.opts.hosts).url;
  }

  private credentialsFor(ep: RegistryEndpoint): RegistryAuth | undefined {
    return this.isSelf(ep) ? (this.opts.auth ?? ep.auth ?? this.opts.hosts.auth) : ep.auth;
  }

  private endpointName(ep: RegistryEndpoint): string {
    return this.isSelf(ep) ? this.opts.hosts.host : `${this.opts.hosts.host} (mirror ${ep.url})`;
  }

  private authorizerFor(ep: RegistryEndpoint): Authorizer {
    let a = this.authorizers.get(ep.url);
    if (!a) {
      a = new Authorizer({
        registry: this.endpointName(ep),
        auth: this.credentialsFor(ep),
        userAgent: this.userAgent,
        tls: ep,
        timeoutMs: this.opts.timeoutMs,
        retry: this.opts.retry,
      });
      this.authorizers.set(ep.url, a);
    }
    return a;
  }

  /** A request with the endpoint's TLS, retries and authorization; one retry after a 401 we can answer. */
  private async send(ep: RegistryEndpoint, ref: ImageReference, action: Action, req: Pick<HttpRequest, "method" | "url" | "headers" | "body" | "maxRedirects" | "signal">): Promise<HttpResponse> {
    const authz = this.authorizerFor(ep);
    const scopes = [`repository:${this.repoPath(ep, ref)}:${action}`];
    const go = (authorization: string | undefined) =>
      request({
        ...req,
        headers: { "user-agent": this.userAgent, ...req.headers, ...(authorization ? { authorization } : {}) },
        tls: ep,
        timeoutMs: this.opts.timeoutMs,
        retry: this.opts.retry,
      });
    const sent = await authz.authorization(scopes);
    const res = await go(sent);
    if (res.status !== 401 || !(await authz.onUnauthorized(res, scopes, sent))) return res;
    discard(res);
    return go(await authz.authorization(scopes));
  }

  /** Turns an unexpected answer into the typed error a person can act on. */
  private async fail(res: HttpResponse, what: string, ep: RegistryEndpoint): Promise<never> {
    const registry = this.endpointName(ep);
    const status = res.status;
    const described = await describeResponse(res);
    if (status === 401) {
      const offered = describeAuth(this.credentialsFor(ep));
      const given = offered ? `refused ${offered}` : "requires authentication and no credentials were given for it";
      throw new UnauthenticatedError(`${what}: registry ${registry} ${given}: ${described}`);
    }
    if (status === 403) throw new PermissionDeniedError(`${what}: registry ${registry} denied access: ${described}`);
    if (status === 404) throw new NotFoundError(`${what} not found: ${described}`);
    if (status === 400 && /DIGEST_INVALID/.test(described)) throw new DataLossError(`${what}: the registry found the content does not match its digest: ${described}`);
    if (status >= 400 && status < 500) throw new InvalidArgumentError(`${what}: registry ${registry} rejected the request: ${described}`);
    throw new UnavailableError(`${what}: unexpected answer from registry ${registry}: ${described}`);
  }
}
