// CRI times are int64 nanoseconds since the epoch, carried as decimal strings.
let last = 0n;

/** Now, strictly increasing within the process, so events and creations order as they happened. */
export function nowNanos(): string {
  let t = BigInt(Date.now()) * 1_000_000n;
  if (t <= last) t = last + 1n;
  last = t;
  return t.toString();
}

export function msToNanos(ms: number): string {
  return (BigInt(Math.round(ms)) * 1_000_000n).toString();
}
