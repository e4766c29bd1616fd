// Tables and ages as crictl prints them.
export { table } from "../images/format";

/** "2 minutes ago", from a CRI nanosecond timestamp. */
export function ago(nanos: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Number(BigInt(nanos) / 1_000_000n)) / 1000));
  const unit = (n: number, u: string) => `${n} ${u}${n === 1 ? "" : "s"} ago`;
  if (s < 1) return "Less than a second ago";
  if (s < 60) return unit(s, "second");
  if (s < 3600) return unit(Math.floor(s / 60), "minute");
  if (s < 86400) return unit(Math.floor(s / 3600), "hour");
  return unit(Math.floor(s / 86400), "day");
}

export function labelFlags(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const i = v.indexOf("=");
    if (i <= 0) throw new Error(`--label wants KEY=VALUE, got "${v}"`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}
