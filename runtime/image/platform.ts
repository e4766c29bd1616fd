// Platform selection from manifest lists and OCI indexes, with the normalisations containerd's
// platforms package applies (x86_64 → amd64, aarch64 → arm64/v8, armhf → arm/v7).
import { NotFoundError } from "../errors";
import type { Descriptor, Platform } from "./types";

export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant;
  const os = p.os.toLowerCase();
  if (architecture === "x86_64" || architecture === "x86-64") architecture = "amd64";
  if (architecture === "aarch64") architecture = "arm64";
  if (architecture === "armhf") {
    architecture = "arm";
    variant = "v7";
  }
  if (architecture === "armel") {
    architecture = "arm";
    variant = "v6";
  }
  if (architecture === "arm64" && (variant === "8" || variant === undefined)) variant = "v8";
  if (architecture === "arm" && variant === undefined) variant = "v7";
  if (architecture === "arm" && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  if (architecture === "amd64" && variant === "v1") variant = undefined;
  return { ...p, os, architecture, ...(variant ? { variant } : { variant: undefined }) };
}

export function hostPlatform(): Platform {
  const arch = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" }[process.arch as string] ?? process.arch;
  return normalizePlatform({ os: "linux", architecture: arch });
}

/** Parses "linux/amd64" or "linux/arm64/v8". */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture) throw new Error(`platform "${s}" is not of the form os/arch[/variant]`);
  return normalizePlatform({ os, architecture, variant });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  return w.os === h.os && w.architecture === h.architecture && (w.variant ?? "") === (h.variant ?? "");
}

/** The first manifest of an index for `want`; NOT_FOUND listing what the index offers otherwise. */
export function selectManifest(manifests: Descriptor[], want: Platform, where: string): Descriptor {
  const hit = manifests.find((m) => m.platform && platformMatches(want, m.platform));
  if (hit) return hit;
  const offered = manifests.map((m) => (m.platform ? formatPlatform(normalizePlatform(m.platform)) : "unknown")).join(", ");
  throw new NotFoundError(`${where} has no image for platform ${formatPlatform(want)} (it offers: ${offered || "nothing"})`);
}
