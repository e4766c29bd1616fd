// linuxSyscalls, openPty and sendFd against the real kernel. Everything that changes a namespace,
// a mount, credentials, signals, limits or seccomp runs in a child Node process (which usually
// ends in execve of busybox to show what a container's first process would inherit); the test
// runner itself only makes calls that change nothing.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { ErrnoError } from "../../runtime/linux/types";
import { linuxSyscalls as sys } from "../../runtime/linux/syscalls";

const ROOT = resolve(import.meta.dirname, "../..");
const BUSYBOX = "/bin/busybox";
const isRoot = process.getuid?.() === 0;

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

after(() => {
  for (const child of children) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-syscalls-"));
  tempDirs.push(dir);
  return dir;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawn a process, collect its output, SIGKILL it by PID if it outlives `timeoutMs`. */
function run(command: string, args: string[], timeoutMs = 30_000): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exit = new Promise<Exit>((resolveExit, reject) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolveExit({ code, signal, stdout, stderr });
    });
  });
  return { child, exit };
}

/**
 * Run `body` as an ES module in a child Node process with `sys`, `CLONE`, `MS`, `MNT_DETACH`, `O`, `fs`, `os`, `out(json)` (a synchronous write to stdout) and `stdio()` (clears
 * close-on-exec on 0-2, which Node sets, so an exec'd program keeps its stdio) in scope.
 */
async function runChild(body: string): Promise<Exit & { pid: number }> {
  const script = `
    import * as fs from "node:fs";
    import * as os from "node:os";
    import { linuxSyscalls as sys, O, RLIMIT, RLIM_INFINITY, PR_SET_NO_NEW_PRIVS, cloexecFromByWalking } from "${ROOT}/runtime/linux/syscalls";
    import { CLONE, MS, MNT_DETACH } from "${ROOT}/runtime/linux/types";
    const out = (value) => fs.writeSync(1, JSON.stringify(value, (_, v) => typeof v === "bigint" ? v.toString() : v) + "\\n");
    const stdio = () => { for (const fd of [0, 1, 2]) sys.clearCloexec(fd); };
    ${body}
  `;
  const { child, exit } = run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]);
  const result = await exit;
  return { ...result, pid: child.pid ?? -1 };
}

function assertExited(result: Exit): void {
  assert.equal(result.code, 0, `child failed (signal ${result.signal}):\n${result.stdout}\n${result.stderr}`);
}

describe("linuxSyscalls in this process (calls that change nothing)", () => {
  test("a failed call throws an ErrnoError shaped like node:fs's", () => {
    assert.throws(
      () => sys.open("/nonexistent/berth", 0),
      (err: unknown) => {
        assert.ok(err instanceof ErrnoError);
        assert.deepEqual({ code: err.code, errno: err.errno, syscall: err.syscall, path: err.path }, {
          code: "ENOENT",
          errno: -2,
          syscall: "open",
          path: "/nonexistent/berth",
        });
        return true;
      },
    );
  });

  test("execve of a missing program returns as an ErrnoError", () => {
    assert.throws(() => sys.execve("/nonexistent/berth", ["x"], []), { code: "ENOENT", syscall: "execve" });
  });

  test("getpid and capget describe this process", () => {
    assert.equal(sys.getpid(), process.pid);
    const status = readFileSync("/proc/self/status", "utf8");
    const hex = (field: string) => BigInt(`0x${status.match(new RegExp(`^${field}:\\s+([0-9a-f]+)$`, "m"))?.[1]}`);
    // capget reads the calling (main) thread's sets, which /proc/self/status shows too.
    assert.deepEqual(sys.capget(), { effective: hex("CapEff"), permitted: hex("CapPrm"), inheritable: hex("CapInh") });
  });
});

describe("linuxSyscalls in a child process", { skip: !isRoot && "needs root" }, () => {
  test("a new mount and UTS namespace hides the child's tmpfs and hostname from the host", async () => {
    const dir = tempDir();
    const hostBefore = hostname();
    const result = await runChild(`
      const dir = ${JSON.stringify(dir)};
      sys.unshare(CLONE.NEWNS | CLONE.NEWUTS);
      sys.mount(null, "/", null, MS.REC | MS.PRIVATE, null);
      sys.mount("tmpfs", dir, "tmpfs", MS.NOSUID | MS.NODEV, "size=1m,mode=755");
      sys.sethostname("berth-ns-test");
      fs.writeFileSync(dir + "/inside", "x");
      const mounted = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\\n").some((l) => l.split(" ")[4] === dir);
      out({ hostname: os.hostname(), files: fs.readdirSync(dir), mounted });
    `);
    assertExited(result);
    assert.deepEqual(JSON.parse(result.stdout), { hostname: "berth-ns-test", files: ["inside"], mounted: true });
    assert.equal(hostname(), hostBefore);
    assert.deepEqual(readdirSync(dir), []);
    const hostMounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n");
    assert.ok(!hostMounts.some((l) => l.split(" ")[4] === dir), "the tmpfs is not in the host's mount table");
  });

  test("pivotRoot into a tmpfs rootfs leaves the exec'd shell only the new root", async () => {
    const root = tempDir();
    const result = await runChild(`
      const root = ${JSON.stringify(root)};
      sys.unshare(CLONE.NEWNS | CLONE.NEWUTS);
      sys.mount(null, "/", null, MS.REC | MS.PRIVATE, null);
      sys.mount("tmpfs", root, "tmpfs", 0, "size=16m,mode=755");
      fs.mkdirSync(root + "/bin");
      fs.copyFileSync(${JSON.stringify(BUSYBOX)}, root + "/bin/busybox");
      fs.chmodSync(root + "/bin/busybox", 0o755);
      for (const applet of ["sh", "hostname", "ls"]) fs.symlinkSync("busybox", root + "/bin/" + applet);
      sys.sethostname("berth-pivot");
      sys.chdir(root);
      sys.pivotRoot(".", ".");
      sys.umount2(".", MNT_DETACH);
      sys.chdir("/");
      stdio();
      sys.execve("/bin/busybox", ["sh", "-c", "echo $$ $(hostname); ls /"], ["PATH=/bin"]);
    `);
    assertExited(result);
    assert.equal(result.stdout, `${result.pid} berth-pivot\nbin\n`);
  });

  test("capset and setresuid with keep-caps give the exec'd program exactly the chosen sets", async () => {
    const result = await runChild(`
      const { applyCapabilities, dropBoundingSet, PR } = await import("${ROOT}/runtime/security/capabilities");
      const caps = {
        bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        effective: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        permitted: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        inheritable: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        ambient: ["CAP_NET_BIND_SERVICE"],
      };
      dropBoundingSet(sys, caps.bounding);
      sys.prctl(PR.SET_KEEPCAPS, 1);
      sys.setgroups([]);
      sys.setresgid(65534, 65534, 65534);
      sys.setresuid(65534, 65534, 65534);
      sys.prctl(PR.SET_KEEPCAPS, 0);
      const warnings = applyCapabilities(sys, caps);
      out({ warnings, sets: sys.capget() });
      stdio();
      sys.execve(${JSON.stringify(BUSYBOX)}, ["busybox", "sh", "-c", "grep -E '^(Cap|Uid|Gid)' /proc/self/status"], []);
    `);
    assertExited(result);
    const [report, ...status] = result.stdout.trim().split("\n");
    assert.deepEqual(JSON.parse(report ?? ""), {
      warnings: [],
      sets: { effective: String(0x401), permitted: String(0x401), inheritable: String(0x401) },
    });
    const fields = Object.fromEntries(status.map((l) => l.split(/:\s+/) as [string, string]));
    assert.deepEqual(fields, {
      Uid: "65534\t65534\t65534\t65534",
      Gid: "65534\t65534\t65534\t65534",
      // Across execve as non-root, without file capabilities: inheritable stays, permitted and
      // effective become the ambient set.
      CapInh: "0000000000000401",
      CapPrm: "0000000000000400",
      CapEff: "0000000000000400",
      CapBnd: "0000000000000421",
      CapAmb: "0000000000000400",
    });
  });

  const signalsOfExecd = (reset: boolean) =>
    runChild(`
      ${reset ? "sys.resetSignals();" : ""}
      stdio();
      sys.execve(${JSON.stringify(BUSYBOX)}, ["busybox", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"], []);
    `);

  test("without resetSignals the exec'd program inherits Node's ignored SIGPIPE", async () => {
    const result = await signalsOfExecd(false);
    assertExited(result);
    const ignored = BigInt(`0x${result.stdout.match(/^SigIgn:\s+([0-9a-f]+)$/m)?.[1]}`);
    assert.ok(ignored & (1n << 12n), `SIGPIPE (13) ignored: ${result.stdout}`);
  });

  test("resetSignals leaves the exec'd program no ignored and no blocked signal", async () => {
    const result = await signalsOfExecd(true);
    assertExited(result);
    assert.equal(result.stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  });

  const fdsOfExecd = (how: "none" | "close_range" | "walk") =>
    runChild(`
      const leak = sys.open("/dev/null", O.RDONLY);
      ${how === "close_range" ? "sys.cloexecFrom(3);" : how === "walk" ? "cloexecFromByWalking(3);" : ""}
      out({ leak });
      stdio();
      sys.execve(${JSON.stringify(BUSYBOX)}, ["busybox", "ls", "/proc/self/fd"], []);
    `).then((result) => {
      assertExited(result);
      const [report, ...fds] = result.stdout.trim().split("\n");
      return { leak: JSON.parse(report ?? "").leak as number, fds: fds.map(Number).sort((a, b) => a - b) };
    });

  test("an fd opened without O_CLOEXEC reaches the exec'd program unless cloexecFrom marks it", async () => {
    const { leak, fds } = await fdsOfExecd("none");
    assert.ok(fds.includes(leak), `fd ${leak} in ${fds}`);
  });

  test("cloexecFrom(3) leaves the exec'd program only stdio and its own directory fd", async () => {
    assert.deepEqual((await fdsOfExecd("close_range")).fds, [0, 1, 2, 3]);
  });

  test("the /proc/self/fd fallback of cloexecFrom does the same", async () => {
    assert.deepEqual((await fdsOfExecd("walk")).fds, [0, 1, 2, 3]);
  });

  test("openPty's master reaches a console-socket listener with the name as data", async () => {
    const dir = tempDir();
    const socketPath = join(dir, "console.sock");
    // The receiver is Python because Node cannot read SCM_RIGHTS. It opens the slave by the name
    // it was sent, reads its window size, and reads through the master what it wrote to the slave.
    const receiver = run("python3", [
      "-c",
      `
import fcntl, json, os, socket, struct, sys, termios
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1]); srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
name = msg.decode()
slave = os.open(name, os.O_RDWR | os.O_NOCTTY)
rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, bytes(8)))
os.write(slave, b"ping\\n")
echoed = os.read(fds[0], 100).decode()
print(json.dumps({"name": name, "fds": len(fds), "master": os.readlink("/proc/self/fd/%d" % fds[0]), "rows": rows, "cols": cols, "echoed": echoed}), flush=True)
`,
      socketPath,
    ]);
    await new Promise<void>((resolveReady, reject) => {
      receiver.child.stdout?.on("data", (d: string) => d.includes("ready") && resolveReady());
      receiver.exit.then((e) => reject(new Error(`receiver exited early: ${e.stderr}`)), reject);
    });
    const sender = await runChild(`
      const { openPty, setWindowSize } = await import("${ROOT}/runtime/linux/pty");
      const { sendFd } = await import("${ROOT}/runtime/linux/unix-socket");
      const pty = openPty();
      setWindowSize(pty.master, 40, 132);
      sendFd(${JSON.stringify(socketPath)}, pty.master, pty.slavePath);
      out({ slavePath: pty.slavePath });
    `);
    assertExited(sender);
    const received = await receiver.exit;
    assert.equal(received.code, 0, received.stderr);
    const { slavePath } = JSON.parse(sender.stdout);
    assert.match(slavePath, /^\/dev\/pts\/\d+$/);
    const got = JSON.parse(received.stdout.split("\n")[1] ?? "");
    assert.deepEqual(got, { name: slavePath, fds: 1, master: "/dev/ptmx", rows: 40, cols: 132, echoed: "ping\r\n" });
  });

  test("setrlimit and getrlimit round-trip 64-bit limits, RLIM_INFINITY included", async () => {
    const result = await runChild(`
      const asLimit = sys.getrlimit(RLIMIT.AS);
      sys.setrlimit(RLIMIT.NOFILE, 512n, 1024n);
      const nofile = sys.getrlimit(RLIMIT.NOFILE);
      sys.setrlimit(RLIMIT.CORE, 4096n, RLIM_INFINITY);
      const core = sys.getrlimit(RLIMIT.CORE);
      const code = (f) => { try { f(); return "ok"; } catch (e) { return e.code + " " + e.syscall; } };
      // Soft above hard is invalid; raising a hard limit needs CAP_SYS_RESOURCE, which this host's bounding set lacks.
      const softAboveHard = code(() => sys.setrlimit(RLIMIT.NOFILE, 2048n, 1024n));
      const raiseHard = code(() => sys.setrlimit(RLIMIT.NOFILE, 512n, 2048n));
      out({ asLimit, nofile, core, softAboveHard, raiseHard });
    `);
    assertExited(result);
    assert.deepEqual(JSON.parse(result.stdout), {
      asLimit: { soft: "18446744073709551615", hard: "18446744073709551615" },
      nofile: { soft: "512", hard: "1024" },
      core: { soft: "4096", hard: "18446744073709551615" },
      softAboveHard: "EINVAL prlimit64",
      raiseHard: "EPERM prlimit64",
    });
  });

  test("a seccomp filter loaded after no_new_privs reaches the exec'd program and denies getppid", async () => {
    // ld [4] (arch); jne x86_64 -> allow; ld [0] (nr); jeq getppid -> errno 1; else allow.
    const insns: [number, number, number, number][] = [
      [0x20, 0, 0, 4],
      [0x15, 0, 3, 0xc000003e],
      [0x20, 0, 0, 0],
      [0x15, 0, 1, 110],
      [0x06, 0, 0, 0x00050001],
      [0x06, 0, 0, 0x7fff0000],
    ];
    const program = Buffer.alloc(insns.length * 8);
    insns.forEach(([code, jt, jf, k], i) => {
      program.writeUInt16LE(code, i * 8);
      program.writeUInt8(jt, i * 8 + 2);
      program.writeUInt8(jf, i * 8 + 3);
      program.writeUInt32LE(k, i * 8 + 4);
    });
    const result = await runChild(`
      sys.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      sys.seccomp(Buffer.from(${JSON.stringify(program.toString("hex"))}, "hex"), 0);
      stdio();
      sys.execve(${JSON.stringify(BUSYBOX)}, ["busybox", "sh", "-c", "cat /proc/self/status | grep Seccomp; echo ppid=$PPID"], ["PATH=/usr/bin:/bin"]);
    `);
    assertExited(result);
    assert.match(result.stdout, /^Seccomp:\s+2$/m);
    assert.match(result.stdout, /^Seccomp_filters:\s+1$/m);
    // getppid answers -1 (EPERM), which busybox's ash prints as an unsigned pid_t.
    assert.match(result.stdout, /^ppid=(-1|4294967295)$/m);
  });
});
