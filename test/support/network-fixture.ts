// A real pod network for one test file, and the host put back as it was afterwards. The test gets
// a bridge name and an IPv4 /24 of its own (one no interface or route of the host overlaps), a
// work dir for the CNI conf, host-local's leases and the namespace pins, and helpers to run a
// TCP server inside a pod's network namespace by PID. cleanup() removes what the test made, and
// only that: other tests may be changing the same nat table at the same time, so nat rules are
// chosen by the test's pod ids, and portmap's shared top-level chains go only if they were not
// there before and nobody uses them.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { overlaps, parseIpv4, parseIpv4Cidr } from "../../runtime/network/ipv4-cidr";
import { removeLocalnetGuard } from "../../runtime/network/localnet-guard";
import { listPinnedNamespaces, unpinNamespaces } from "../../runtime/network/namespaces";
import { removeIdlePortmapChains } from "../../runtime/network/portmap-chains";

const TOP_LEVEL = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"];
const WATCHED_SYSCTLS = ["net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet", "net/ipv4/conf/default/route_localnet"];

/** Runs a tool synchronously; its trimmed stdout. */
export function tool(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

interface NatTable {
  chains: Set<string>;
  rules: string[];
}

function natTable(family: "iptables" | "ip6tables"): NatTable {
  let save = "";
  try {
    save = tool(`${family}-save`, ["-t", "nat"]);
  } catch {
    // No nat table for this family: nothing can be in it.
  }
  const lines = save.split("\n");
  return { chains: new Set(lines.filter((l) => l.startsWith(":")).map((l) => l.slice(1).split(" ")[0]!)), rules: lines.filter((l) => l.startsWith("-A ")) };
}

function sysctl(name: string): string {
  return readFileSync(`/proc/sys/${name}`, "utf8").trim();
}

interface IpAddr {
  ifname: string;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

/** A /24 in 10.89.0.0/16 that overlaps no address and no route of the host, starting near `seed`. */
function freeSubnet(seed: number, avoid: string[] = []): string {
  const taken = [
    ...(JSON.parse(tool("ip", ["-j", "-4", "addr", "show"])) as IpAddr[]).flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`)),
    ...(JSON.parse(tool("ip", ["-j", "-4", "route", "show", "table", "all"])) as Array<{ dst?: string }>).map((r) => r.dst ?? "").filter((d) => /^\d/.test(d)),
    ...avoid,
  ].map((c) => {
    const [ip = "", len = "32"] = c.split("/");
    return { network: parseIpv4(ip) ?? 0, prefix: Number(len) };
  });
  for (let i = 0; i < 200; i++) {
    const candidate = `10.89.${20 + ((seed + i) % 200)}.0/24`;
    const c = parseIpv4Cidr(candidate);
    if (!taken.some((t) => overlaps(c, t))) return candidate;
  }
  throw new Error("no free /24 in 10.89.20.0-10.89.219.0 on this host");
}

export class NetworkFixture {
  readonly bridge = `bt${process.pid % 10000}`;
  readonly subnet: string;
  readonly dir = mkdtempSync(join(tmpdir(), "berth-podnet-"));
  readonly confDir = join(this.dir, "net.d");
  readonly ipamDataDir = join(this.dir, "ipam");
  readonly pinDir = join(this.dir, "ns");
  private readonly podIds = new Set<string>();
  private readonly hostVeths = new Set<string>();
  private readonly servers = new Set<ChildProcess>();
  private readonly before = { nat4: natTable("iptables"), nat6: natTable("ip6tables"), sysctls: WATCHED_SYSCTLS.map(sysctl) };

  constructor() {
    this.subnet = freeSubnet(process.pid);
  }

  /**
   * A host port for a hostPort mapping: below the ephemeral range (portmap's DNAT in OUTPUT would
   * otherwise capture another test's loopback connections to a port the kernel gave it) and with
   * no listener of the host's on it.
   */
  freeHostPort(offset = 0): number {
    const ephemeralStart = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    const listening = new Set(
      ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"].flatMap((f) =>
        readFileSync(f, "utf8")
          .split("\n")
          .slice(1)
          .map((l) => Number.parseInt(l.trim().split(/\s+/)[1]?.split(":")[1] ?? "", 16)),
      ),
    );
    const low = 20_000;
    for (let i = 0; i < ephemeralStart - low; i++) {
      const port = low + ((process.pid + offset + i) % (ephemeralStart - low));
      if (!listening.has(port)) return port;
    }
    throw new Error(`no free port between ${low} and ${ephemeralStart}`);
  }

  /** Another free /24, for a test that moves the network. */
  anotherSubnet(): string {
    return freeSubnet(process.pid + 7, [this.subnet]);
  }

  /** A pod id (64 hex, as the pod service makes them) that cleanup knows as the test's. */
  newPodId(): string {
    const id = randomBytes(32).toString("hex");
    this.podIds.add(id);
    return id;
  }

  /** The host side of a pod's veth, from its CNI result, so a leftover one can be found. */
  trackResult(stored: unknown): void {
    const interfaces = (stored as { result?: { interfaces?: Array<{ name?: string; sandbox?: string }> } }).result?.interfaces ?? [];
    for (const i of interfaces) if (i.name && !i.sandbox && i.name !== this.bridge) this.hostVeths.add(i.name);
  }

  /** A TCP server in the network namespace `netns` that answers every connection with `reply`, running until cleanup. */
  startServer(netns: string, port: number, reply: string): ChildProcess {
    const child = spawn("nsenter", [`--net=${netns}`, "/bin/busybox", "nc", "-ll", "-p", String(port), "-e", "/bin/busybox", "echo", reply], { stdio: "ignore" });
    this.servers.add(child);
    child.once("exit", () => this.servers.delete(child));
    return child;
  }

  /** Ends a server (by PID), as a pod's containers end before its namespaces go. */
  async stopServer(child: ChildProcess): Promise<void> {
    if (child.pid !== undefined && this.servers.has(child)) process.kill(child.pid, "SIGKILL");
    await waitFor(() => !this.servers.has(child), 5_000);
  }

  /** Runs `args` in the network namespace `netns` (by nsenter); stdout. */
  inNetns(netns: string, args: string[]): string {
    return tool("nsenter", [`--net=${netns}`, ...args]);
  }

  /**
   * Like inNetns, without blocking the event loop (a server of the test process may have to
   * answer), and killed by PID after `timeoutMs`.
   */
  inNetnsAsync(netns: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn("nsenter", [`--net=${netns}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        err += d;
      });
      const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, "SIGKILL"), timeoutMs);
      child.once("error", reject);
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out.trim());
        else reject(new Error(`nsenter --net=${netns} ${args.join(" ")}: ${signal ? `killed by ${signal}` : `exit ${code}`}: ${err.trim()}`));
      });
    });
  }

  /** Links enslaved to the test's bridge. */
  bridgePorts(): string[] {
    try {
      return (JSON.parse(tool("ip", ["-j", "link", "show", "master", this.bridge])) as Array<{ ifname: string }>).map((l) => l.ifname);
    } catch {
      return [];
    }
  }

  /** nat rules (IPv4) that name one of the test's pods. */
  natRulesOfPods(): string[] {
    return natTable("iptables").rules.filter((r) => [...this.podIds].some((id) => r.includes(id)));
  }

  /** What of the test's is still on the host, one line each; [] when the host is as it was. */
  leftovers(): string[] {
    const left: string[] = [];
    if (existsSync(`/sys/class/net/${this.bridge}`)) left.push(`bridge ${this.bridge}`);
    for (const veth of this.hostVeths) if (existsSync(`/sys/class/net/${veth}`)) left.push(`veth ${veth}`);
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) if (line.includes(this.dir)) left.push(`mount ${line.split(" ")[4]}`);
    for (const family of ["iptables", "ip6tables"] as const) {
      const now = natTable(family);
      for (const r of now.rules) if ([...this.podIds].some((id) => r.includes(id))) left.push(`${family} nat rule ${r}`);
      const before = family === "iptables" ? this.before.nat4 : this.before.nat6;
      const idle = !now.rules.some((r) => r.startsWith("-A CNI-HOSTPORT-DNAT "));
      for (const c of TOP_LEVEL) if (idle && now.chains.has(c) && !before.chains.has(c)) left.push(`${family} nat chain ${c}`);
      for (const c of now.chains) if (c.startsWith("CNI-DN-") && !before.chains.has(c) && !now.rules.some((r) => r.includes(`-j ${c}`))) left.push(`${family} nat chain ${c} (unreferenced)`);
    }
    if (tool("iptables-save", ["-t", "filter"]).includes(`-i ${this.bridge} `)) left.push(`filter rule on ${this.bridge}`);
    WATCHED_SYSCTLS.forEach((name, i) => {
      if (sysctl(name) !== this.before.sysctls[i]) left.push(`sysctl ${name} = ${sysctl(name)} (was ${this.before.sysctls[i]})`);
    });
    if (this.servers.size) left.push(`${this.servers.size} server process(es)`);
    if (existsSync(this.dir)) left.push(`dir ${this.dir}`);
    return left;
  }

  /** Removes everything the test made; safe to call twice, also after a failure half-way. */
  async cleanup(): Promise<void> {
    for (const child of this.servers) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    await waitFor(() => this.servers.size === 0, 5_000);
    for (const pins of listPinnedNamespaces(this.pinDir).values()) unpinNamespaces(linuxSyscalls, pins);
    for (const family of ["iptables", "ip6tables"] as const) this.removePodNatRules(family);
    if (!TOP_LEVEL.some((c) => this.before.nat4.chains.has(c))) await removeIdlePortmapChains();
    await removeLocalnetGuard(this.bridge).catch(() => {});
    try {
      tool("ip", ["link", "del", this.bridge]);
    } catch {
      // Already gone.
    }
    // A veth goes with its namespace, which the kernel destroys asynchronously once unpinned.
    await waitFor(() => [...this.hostVeths].every((v) => !existsSync(`/sys/class/net/${v}`)), 5_000);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private removePodNatRules(family: "iptables" | "ip6tables"): void {
    const now = natTable(family);
    const ours = now.rules.filter((r) => [...this.podIds].some((id) => r.includes(id)));
    const chains = new Set(ours.map((r) => / -j (CNI-DN-\S+)/.exec(r)?.[1]).filter((c): c is string => Boolean(c)));
    for (const rule of ours) {
      const [, chain, ...spec] = splitRule(rule);
      try {
        tool(family, ["-w", "10", "-t", "nat", "-D", chain!, ...spec]);
      } catch {
        // Gone meanwhile.
      }
    }
    for (const chain of chains) {
      if (this.before[family === "iptables" ? "nat4" : "nat6"].chains.has(chain)) continue;
      for (const op of ["-F", "-X"]) {
        try {
          tool(family, ["-w", "10", "-t", "nat", op, chain]);
        } catch {
          // Gone meanwhile.
        }
      }
    }
  }
}

/** iptables-save's words, quoted comments kept whole. */
function splitRule(rule: string): string[] {
  return (rule.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? []).map((w) => (w.startsWith('"') ? w.slice(1, -1) : w));
}

export async function waitFor(ok: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** What a TCP connection to host:port reads until the peer closes, or how it failed. */
export function tcpRead(host: string, port: number, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("timeout");
    }, timeoutMs);
    socket.setEncoding("utf8").on("data", (d: string) => {
      data += d;
    });
    socket.on("end", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(data.trim());
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === "ECONNREFUSED" ? "refused" : `error ${err.code}`);
    });
  });
}

/** tcpRead until it answers `expected` (a server just started needs a moment), or the last answer. */
export async function tcpReadEventually(host: string, port: number, expected: string, timeoutMs = 5_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const got = await tcpRead(host, port, 1_000);
    if (got === expected || Date.now() > until) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function assertInSubnet(ip: string, subnet: string): void {
  const c = parseIpv4Cidr(subnet);
  const n = parseIpv4(ip);
  assert.ok(n !== undefined && overlaps(c, { network: n, prefix: 32 }), `${ip} is in ${subnet}`);
}
