// CNI plugins as small shell scripts, for testing how berth invokes plugins without touching the
// host's network: each run records its environment, its stdin and its name, then prints the
// result the test set for that plugin, or fails the way the test asked (an error object on
// stdout, text on stderr, an exit code, or hanging until killed).
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PluginCall {
  command: string;
  plugin: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

export interface Failure {
  stdout?: string;
  stderr?: string;
  code?: number;
  /** Hang instead of failing (exec sleep: the PID berth kills is the sleeping one). */
  hang?: boolean;
}

const SCRIPT = `#!/bin/sh
here="$(dirname "$0")/.."
t="$(basename "$0")"
n=$(cat "$here/count" 2>/dev/null || echo 0)
echo $((n + 1)) > "$here/count"
p="$here/log/$(printf '%04d' "$n")"
env > "$p.env"
cat > "$p.stdin"
echo "$t" > "$p.plugin"
f="$here/fail/$t.$CNI_COMMAND"
if [ -f "$f.hang" ]; then exec sleep 30; fi
if [ -f "$f.code" ]; then
  [ -f "$f.stdout" ] && cat "$f.stdout"
  [ -f "$f.stderr" ] && cat "$f.stderr" >&2
  exit "$(cat "$f.code")"
fi
if [ "$CNI_COMMAND" = ADD ]; then
  if [ -f "$here/results/$t.json" ]; then cat "$here/results/$t.json"; else printf '{"cniVersion":"1.0.0"}'; fi
fi
exit 0
`;

export class FakePlugins {
  readonly dir = mkdtempSync(join(tmpdir(), "berth-fake-cni-"));
  readonly binDir = join(this.dir, "bin");

  constructor(types: string[]) {
    for (const sub of ["bin", "log", "fail", "results"]) mkdirSync(join(this.dir, sub));
    for (const t of types) this.add(t);
  }

  add(type: string): void {
    writeFileSync(join(this.binDir, type), SCRIPT);
    chmodSync(join(this.binDir, type), 0o755);
  }

  /** What `type` prints for ADD. */
  result(type: string, result: unknown): void {
    writeFileSync(join(this.dir, "results", `${type}.json`), JSON.stringify(result));
  }

  fail(type: string, command: "ADD" | "DEL" | "CHECK", how: Failure): void {
    const base = join(this.dir, "fail", `${type}.${command}`);
    if (how.hang) writeFileSync(`${base}.hang`, "");
    writeFileSync(`${base}.code`, String(how.code ?? 1));
    if (how.stdout !== undefined) writeFileSync(`${base}.stdout`, how.stdout);
    if (how.stderr !== undefined) writeFileSync(`${base}.stderr`, how.stderr);
  }

  /** Every run so far, in order. */
  calls(): PluginCall[] {
    const log = join(this.dir, "log");
    const runs = [...new Set(readdirSync(log).map((f) => f.split(".")[0]!))].sort();
    return runs.map((r) => {
      const env = Object.fromEntries(
        readFileSync(join(log, `${r}.env`), "utf8")
          .split("\n")
          .filter((l) => l.includes("="))
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
      const stdin = JSON.parse(readFileSync(join(log, `${r}.stdin`), "utf8")) as Record<string, unknown>;
      return { command: env.CNI_COMMAND ?? "", plugin: readFileSync(join(log, `${r}.plugin`), "utf8").trim(), env, stdin };
    });
  }

  /** "COMMAND plugin ifname" per run: the order at a glance. */
  sequence(): string[] {
    return this.calls().map((c) => `${c.command} ${c.plugin} ${c.env.CNI_IFNAME}`);
  }

  forget(): void {
    rmSync(join(this.dir, "log"), { recursive: true, force: true });
    rmSync(join(this.dir, "count"), { force: true });
    mkdirSync(join(this.dir, "log"));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
