// Image references, parsed and normalised by the grammar of distribution/reference (what Docker,
// containerd and CRI-O accept), so "busybox" names the same image here as in `docker pull`.
import { InvalidArgumentError } from "../errors";
import type { ImageReference } from "./types";

export const DOCKER_HUB_DOMAIN = "docker.io";
const LEGACY_HUB_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
const DEFAULT_TAG = "latest";
const NAME_TOTAL_MAX = 255;

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
// An IPv6 literal in brackets, as distribution/reference ≥ 2.8 allows.
const IPV6 = "\\[(?:[a-fA-F0-9:]+)\\]";
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const KNOWN_DIGEST_HEX: Record<string, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ };
// A bare 64-hex string is an image ID, never a repository name (Docker refuses it for that reason).
const ANONYMOUS_ID_RE = /^[a-f0-9]{64}$/;

function invalid(input: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference "${input}": ${why}`);
}

/** Checks "algorithm:hex" and, for sha256/sha512, the hex length; returns the digest unchanged. */
export function validateDigest(digest: string, where = digest): string {
  if (!DIGEST_RE.test(digest)) throw invalid(where, `"${digest}" is not a digest (want algorithm:hex, e.g. sha256:<64 hex>)`);
  const [algorithm, hex] = digest.split(":", 2) as [string, string];
  const hexRe = KNOWN_DIGEST_HEX[algorithm];
  if (!hexRe) throw invalid(where, `digest algorithm "${algorithm}" is not supported (sha256 or sha512)`);
  if (!hexRe.test(hex)) throw invalid(where, `digest "${digest}" must have ${algorithm === "sha256" ? 64 : 128} lower-case hex characters`);
  return digest;
}

/** Splits "name" into domain and remainder as Docker's splitDockerDomain does. */
function splitDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf("/");
  const first = slash === -1 ? "" : name.slice(0, slash);
  // The first component is a registry only if it looks like one: a dot, a port, "localhost",
  // or upper case (which a repository path may not have).
  const looksLikeHost = slash !== -1 && (first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first);
  let domain = looksLikeHost ? first : DOCKER_HUB_DOMAIN;
  let remainder = looksLikeHost ? name.slice(slash + 1) : name;
  if (domain === LEGACY_HUB_DOMAIN) domain = DOCKER_HUB_DOMAIN;
  if (domain === DOCKER_HUB_DOMAIN && !remainder.includes("/")) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * Parses and normalises a reference: `busybox` → docker.io/library/busybox:latest,
 * `127.0.0.1:5000/a/b:t`, `x@sha256:…`, `x:t@sha256:…`. A reference with neither tag nor
 * digest gets the tag "latest". Throws InvalidArgumentError naming the input.
 */
export function parseReference(input: string): ImageReference {
  const s = input.trim();
  if (s === "") throw invalid(input, "it is empty");
  if (ANONYMOUS_ID_RE.test(s)) throw invalid(input, "a 64-character hex string is an image ID, not a repository name");

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = validateDigest(rest.slice(at + 1), input);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(input, `tag "${tag}" must be 1-128 characters of [A-Za-z0-9_.-], not starting with "." or "-"`);
  }
  if (rest === "") throw invalid(input, "the repository name is empty");
  if (rest.length > NAME_TOTAL_MAX) throw invalid(input, `the repository name is longer than ${NAME_TOTAL_MAX} characters`);

  const { domain, remainder } = splitDomain(rest);
  if (!DOMAIN_RE.test(domain)) throw invalid(input, `"${domain}" is not a valid registry host[:port]`);
  if (remainder.toLowerCase() !== remainder) throw invalid(input, "repository name must be lowercase");
  for (const component of remainder.split("/")) {
    if (component === "") throw invalid(input, "the repository path has an empty component");
    if (!PATH_COMPONENT_RE.test(component)) {
      throw invalid(input, `path component "${component}" must be lower-case letters and digits, separated by ".", "_", "__" or dashes`);
    }
  }
  if (!tag && !digest) tag = DEFAULT_TAG;
  const ref: ImageReference = { domain, path: remainder };
  if (tag) ref.tag = tag;
  if (digest) ref.digest = digest;
  return ref;
}

/** "docker.io/library/busybox": the fully qualified repository, without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full form: "docker.io/library/busybox:latest", "host/a@sha256:…", "host/a:t@sha256:…". */
export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}

/** The short name Docker prints: "busybox", "user/app", "127.0.0.1:5000/a" (no tag or digest). */
export function familiarName(ref: ImageReference): string {
  if (ref.domain !== DOCKER_HUB_DOMAIN) return repositoryName(ref);
  return ref.path.startsWith(OFFICIAL_REPO_PREFIX) && ref.path.split("/").length === 2 ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : ref.path;
}

/** familiarName with the tag and digest: "busybox:latest", "busybox@sha256:…". */
export function familiarString(ref: ImageReference): string {
  return `${familiarName(ref)}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}
