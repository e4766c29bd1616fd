// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource): "100m", "0.5", "128Mi",
// "1G", "1e3". Only what cpu and memory need: a number of milli-units or of bytes.
import { InvalidArgumentError } from "../../runtime/errors";

const SUFFIX: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The quantity's value in base units (cores, bytes). */
export function parseQuantity(q: string | number, field: string): number {
  if (typeof q === "number") return q;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(e[+-]?\d+)|(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei))?$/.exec(q.trim());
  if (!m) throw new InvalidArgumentError(`${field}: "${q}" is not a Kubernetes quantity (like 100m, 0.5, 128Mi, 1G)`);
  const n = Number(m[1]) * (m[2] ? 10 ** Number(m[2].slice(1)) : SUFFIX[m[3] ?? ""]!);
  if (n < 0) throw new InvalidArgumentError(`${field}: "${q}" must not be negative`);
  return n;
}

/** CPU in millicores, rounded up as Kubernetes does (0.0001 → 1m). */
export function milliCpu(q: string | number, field: string): number {
  return Math.ceil(parseQuantity(q, field) * 1000 - 1e-9);
}

export function bytesOf(q: string | number, field: string): number {
  return Math.ceil(parseQuantity(q, field));
}
