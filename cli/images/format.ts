// How the CLI prints sizes, digests and image names, in the forms crictl users know.

export function humanBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)}${units[i]}`;
}

export function shortDigest(d: string): string {
  return d.replace(/^sha256:/, "").slice(0, 13);
}

/** "docker.io/library/busybox:1.36" → ["docker.io/library/busybox", "1.36"] */
export function splitTag(repoTag: string): [string, string] {
  const at = repoTag.lastIndexOf(":");
  if (at <= repoTag.lastIndexOf("/")) return [repoTag, "<none>"];
  return [repoTag.slice(0, at), repoTag.slice(at + 1)];
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return `${rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join("")).join("\n")}\n`;
}
