// CRI Exec, Attach and PortForward against a real daemon, through the URLs it hands out, over
// SPDY/3.1 (berth's own client, as kubectl and crictl speak it) and WebSocket (the `ws` package).
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import { remoteCommand, spdyConnect } from "../../cri/streaming/client";
import type * as cri from "../../runtime/api/cri-v1";
import { Code } from "../../runtime/errors";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { hostNetworkSnapshot, type HostNetworkSnapshot, restoreHostNetwork } from "../support/host-network";
import { containerConfig, forceClean, podConfig, removeAllPods, runContainer, runPod, waitForState } from "../support/pods";
import { startRegistry } from "../support/registry";
import { cgroupDirsBelowSelf } from "../support/runtime-pair";
import { buildTestImages, pushLayout } from "../support/test-images";

const BRIDGE = `bs${process.pid % 100000}`;
const SUBNET = `10.84.${process.pid % 250}.0/24`;
const CGROUP_ROOT = `berth-test-streaming-${process.pid}`;
const V4 = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

class Collect extends PassThrough {
  text = "";
  constructor() {
    super();
    this.on("data", (d: Buffer) => (this.text += d.toString()));
  }
  async waitFor(re: RegExp, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    while (!re.test(this.text)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} in ${JSON.stringify(this.text)}`);
      await sleep(20);
    }
    return this.text;
  }
}

describe("streaming: exec, attach and port-forward through the CRI URLs", () => {
  let work: string;
  let daemon: TestDaemon;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let net: HostNetworkSnapshot;
  let image: string;
  let podId: string;
  let shell: string;
  let ticker: string;

  before(async () => {
    net = hostNetworkSnapshot();
    work = await mkdtemp(join(tmpdir(), "berth-streaming-"));
    registry = await startRegistry();
    const images = await buildTestImages(join(work, "layouts"));
    await pushLayout(images.busybox.layout, images.busybox.tag, registry.host, images.busybox.repo);
    image = `${registry.host}/${images.busybox.repo}:${images.busybox.tag}`;
    daemon = await startDaemon({
      dir: join(work, "daemon"),
      insecureRegistries: [registry.host],
      // A short idle timeout, so that the test of it is quick; every other session keeps talking.
      config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: SUBNET }, streaming: { addr: "127.0.0.1:0", idleTimeoutSeconds: 3 } },
    });
    await daemon.client.imageCall("PullImage", { image: { image } });
    const pod = podConfig("stream", { logDirectory: join(work, "logs") });
    podId = await runPod(daemon.client, pod);
    shell = await runContainer(daemon.client, podId, pod, containerConfig("shell", image, ["sh", "-c", "echo '<h1>hi</h1>' > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]));
    ticker = await runContainer(daemon.client, podId, pod, containerConfig("ticker", image, ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"]));
    await waitForState(daemon.client, shell, "CONTAINER_RUNNING");
    await waitForState(daemon.client, ticker, "CONTAINER_RUNNING");
  });

  after(async () => {
    try {
      if (daemon) await removeAllPods(daemon.client).catch(() => {});
      await daemon?.stop();
    } finally {
      // BERTH_TEST_LOGS=DIR keeps the daemon's log for a failed run.
      if (process.env.BERTH_TEST_LOGS && daemon) await writeFile(join(process.env.BERTH_TEST_LOGS, "streaming-daemon.log"), daemon.logs()).catch(() => {});
      const leftovers = work ? await forceClean(work, cgroupDirsBelowSelf(CGROUP_ROOT)) : [];
      restoreHostNetwork(net, BRIDGE);
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
      assert.deepEqual(leftovers, [], "the daemon removed everything itself");
    }
  });

  const execUrl = async (req: Record<string, unknown>) => (await daemon.client.runtimeCall<cri.ExecResponse>("Exec", { containerId: shell, stdout: true, ...req })).url;

  test("the URL is absolute http on loopback; tty with stderr, no stream at all, or an unknown container are refused", async () => {
    const url = await execUrl({ cmd: ["true"] });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{6,12}$/);
    await assert.rejects(daemon.client.runtimeCall("Exec", { containerId: shell, cmd: ["sh"], tty: true, stderr: true, stdout: true }), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /tty and stderr/.test(e.message));
    await assert.rejects(daemon.client.runtimeCall("Exec", { containerId: shell, cmd: ["sh"] }), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
    await assert.rejects(daemon.client.runtimeCall("Exec", { containerId: "nope", cmd: ["sh"], stdout: true }), (e: { code: number }) => e.code === Code.NOT_FOUND);
    await assert.rejects(daemon.client.runtimeCall("PortForward", { podSandboxId: "nope" }), (e: { code: number }) => e.code === Code.NOT_FOUND);
  });

  test("an interactive shell with a terminal: a command's output comes back, and a resize is what stty reports", async () => {
    const url = await execUrl({ cmd: ["sh"], stdin: true, tty: true });
    const stdin = new PassThrough();
    const out = new Collect();
    const s = await remoteCommand(await spdyConnect(url, V4), { stdin, stdout: out, tty: true, size: { width: 80, height: 24 } });
    stdin.write("echo hello-$((6*7))\n");
    await out.waitFor(/hello-42/);
    s.resize(100, 40);
    await sleep(200);
    stdin.write("stty size\n");
    await out.waitFor(/40 100/);
    stdin.write("exit 5\n");
    assert.equal(await s.done, 5);
  });

  // kubectl sends its terminal's size as soon as the streams are open, before the process exists:
  // a command whose first act is to read it must see it, and nothing but its own bytes come back.
  test("exec -t: the command sees the client's terminal size from its first instant and TERM=xterm; the output is its own bytes alone", async () => {
    const url = await execUrl({ cmd: ["sh", "-c", "stty size; echo $TERM"], tty: true });
    const out = new Collect();
    const s = await remoteCommand(await spdyConnect(url, V4), { stdout: out, tty: true, size: { width: 100, height: 30 } });
    assert.equal(await s.done, 0);
    assert.equal(out.text, "30 100\r\nxterm\r\n", "and TERM=xterm, as containerd sets it for an exec with a terminal");
  });

  test("exec with stdin closed mid-way: the command reads EOF and its output and exit code arrive", async () => {
    const url = await execUrl({ cmd: ["sh", "-c", "cat; echo done >&2"], stdin: true, stderr: true });
    const stdin = new PassThrough();
    const out = new Collect();
    const err = new Collect();
    const s = await remoteCommand(await spdyConnect(url, V4), { stdin, stdout: out, stderr: err });
    stdin.write("first line\n");
    await out.waitFor(/first line/);
    stdin.end("last");
    assert.equal(await s.done, 0);
    assert.equal(out.text, "first line\nlast");
    assert.equal(err.text, "done\n");
  });

  test("a non-zero exit is reported as NonZeroExitCode with the code", async () => {
    const url = await execUrl({ cmd: ["sh", "-c", "echo out; exit 3"] });
    const conn = await spdyConnect(url, V4);
    assert.equal(conn.protocol, "v4.channel.k8s.io");
    const out = new Collect();
    const s = await remoteCommand(conn, { stdout: out });
    assert.equal(await s.done, 3);
    assert.equal(out.text, "out\n");
  });

  test("a token works once; a second use, a made-up token and a request without X-Stream-Protocol-Version are refused", async () => {
    const url = await execUrl({ cmd: ["true"] });
    const s = await remoteCommand(await spdyConnect(url, V4), { stdout: new Collect() });
    assert.equal(await s.done, 0);
    await assert.rejects(spdyConnect(url, V4), (e: { statusCode?: number }) => e.statusCode === 404);
    await assert.rejects(spdyConnect(url.replace(/\/[^/]+$/, "/abcdefgh"), V4), (e: { statusCode?: number }) => e.statusCode === 404);
    const fresh = await execUrl({ cmd: ["true"] });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(fresh, { method: "POST", headers: { Connection: "Upgrade", Upgrade: "SPDY/3.1" } });
      req.on("response", (res) => resolve(res.statusCode ?? 0));
      req.on("upgrade", () => reject(new Error("upgraded without a protocol")));
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 400);
  });

  test("attach to a container that prints continuously, twice at once; detaching leaves it running", async () => {
    const urls = await Promise.all([0, 1].map(async () => (await daemon.client.runtimeCall<cri.AttachResponse>("Attach", { containerId: ticker, stdout: true, stderr: true })).url));
    const outs = [new Collect(), new Collect()];
    const sessions = await Promise.all(urls.map(async (u, i) => remoteCommand(await spdyConnect(u, V4), { stdout: outs[i], stderr: new Collect() })));
    await Promise.all(outs.map((o) => o.waitFor(/tick \d+\ntick \d+\n/)));
    for (const s of sessions) s.close();
    await sleep(300);
    const st = await daemon.client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: ticker });
    assert.equal(st.status!.state, "CONTAINER_RUNNING");
  });

  test("port-forward to busybox httpd in the pod: 50 fetches in parallel, and a closed port is an error, not a hang", async () => {
    const { url } = await daemon.client.runtimeCall<cri.PortForwardResponse>("PortForward", { podSandboxId: podId, port: [8080] });
    const { session } = await spdyConnect(url, ["portforward.k8s.io"]);
    const { forwardConnection } = await import("../../cri/streaming/client");
    const { createServer } = await import("node:net");
    let id = 0;
    const server = createServer((local) => forwardConnection(session, 8080, id++, local));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const bodies = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const res = await fetch(`http://127.0.0.1:${port}/index.html`, { headers: { connection: "close" } });
          return res.text();
        }),
      );
      assert.deepEqual(new Set(bodies), new Set(["<h1>hi</h1>\n"]));
      // Port 9 is closed in the pod: the error stream says so and the local connection ends.
      const closed = createServer((local) => forwardConnection(session, 9, id++, local));
      await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
      const cport = (closed.address() as { port: number }).port;
      const outcome = await new Promise<string>((resolve) => {
        const c = connect(cport, "127.0.0.1");
        c.on("close", () => resolve("closed"));
        c.on("error", () => {});
        setTimeout(() => resolve("hang"), 5000);
      });
      closed.close();
      assert.equal(outcome, "closed");
    } finally {
      server.close();
      session.destroy();
    }
  });

  test("an abandoned connection frees what it held; the daemon serves the next session", async () => {
    const url = await execUrl({ cmd: ["sleep", "30"], stdin: true });
    const conn = await spdyConnect(url, V4);
    await remoteCommand(conn, { stdin: new PassThrough(), stdout: new Collect() });
    conn.session.destroy();
    await sleep(300);
    const again = await remoteCommand(await spdyConnect(await execUrl({ cmd: ["echo", "alive"] }), V4), { stdout: new Collect() });
    assert.equal(await again.done, 0);
  });

  test("exec over WebSocket (v5.channel.k8s.io): output on channel 1, the exit status on channel 3", async () => {
    const url = await execUrl({ cmd: ["sh", "-c", "read x; echo got-$x; exit 4"], stdin: true });
    const ws = new WebSocket(url.replace(/^http/, "ws"), ["v5.channel.k8s.io"]);
    let stdout = "";
    let status = "";
    await new Promise<void>((resolve, reject) => {
      ws.on("open", () => {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("berth\n")]));
        ws.send(Buffer.from([255, 0]));
      });
      ws.on("message", (d: Buffer) => {
        if (d[0] === 1) stdout += d.subarray(1).toString();
        if (d[0] === 3) status += d.subarray(1).toString();
      });
      ws.on("close", () => resolve());
      ws.on("error", reject);
    });
    assert.equal(ws.protocol, "v5.channel.k8s.io");
    assert.equal(stdout, "got-berth\n");
    const s = JSON.parse(status) as { status: string; reason: string; details: { causes: Array<{ reason: string; message: string }> } };
    assert.equal(s.status, "Failure");
    assert.equal(s.reason, "NonZeroExitCode");
    assert.deepEqual(s.details.causes, [{ reason: "ExitCode", message: "4" }]);
  });

  test("an idle streaming connection is closed after the idle timeout", async () => {
    const url = await execUrl({ cmd: ["sleep", "60"], stdin: true });
    const conn = await spdyConnect(url, V4);
    const s = await remoteCommand(conn, { stdin: new PassThrough(), stdout: new Collect() });
    const t0 = Date.now();
    await assert.rejects(s.done, /closed before the session ended/);
    const idle = (Date.now() - t0) / 1000;
    assert.ok(idle >= 2.5 && idle < 10, `closed after ${idle} s`);
  });

  test("attach still works after the daemon was killed and restarted: conmon kept the socket", async () => {
    await daemon.kill();
    await daemon.restart();
    const { url } = await daemon.client.runtimeCall<cri.AttachResponse>("Attach", { containerId: ticker, stdout: true });
    const out = new Collect();
    const s = await remoteCommand(await spdyConnect(url, V4), { stdout: out });
    await out.waitFor(/tick \d+\n/);
    s.close();
  });

  test("berth exec, the CLI, runs a command and exits with its code", async () => {
    const r = await daemon.cli(["exec", "-i", shell, "--", "sh", "-c", "cat; exit 2"], { input: "piped\n" });
    assert.equal(r.stdout, "piped\n");
    assert.equal(r.code, 2, r.stderr);
  });

  test("berth port-forward, the CLI, serves a local port until it is stopped", async () => {
    const { spawn } = await import("node:child_process");
    const { BERTH_JS } = await import("../support/daemon");
    const cli = spawn(process.execPath, [BERTH_JS, "--socket", daemon.socket, "port-forward", "stream", "0:8080"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      cli.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no "Forwarding from" line: ${out}`)), 10_000);
        cli.stdout.on("data", () => {
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
      });
      const body = await (await fetch(`http://127.0.0.1:${port}/index.html`, { headers: { connection: "close" } })).text();
      assert.equal(body, "<h1>hi</h1>\n");
    } finally {
      const exited = new Promise((r) => cli.once("exit", r));
      process.kill(cli.pid!, "SIGTERM");
      await exited;
    }
    assert.equal(cli.exitCode, 0);
  });

  test("port-forward over WebSocket: the port from the URL, its number first on both channels, then the bytes", async () => {
    const { url } = await daemon.client.runtimeCall<cri.PortForwardResponse>("PortForward", { podSandboxId: podId, port: [8080] });
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}?port=8080`, ["portforward.k8s.io"]);
    const data: Buffer[] = [];
    const firsts = new Map<number, Buffer>();
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no HTTP answer through the WebSocket")), 10_000);
      ws.on("open", () => ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("GET /index.html HTTP/1.0\r\n\r\n")])));
      ws.on("message", (m: Buffer) => {
        const ch = m[0]!;
        if (!firsts.has(ch)) {
          firsts.set(ch, m.subarray(1));
          return;
        }
        if (ch === 0) data.push(m.subarray(1));
        if (/<h1>hi<\/h1>/.test(Buffer.concat(data).toString())) {
          clearTimeout(t);
          resolve();
        }
      });
      ws.on("error", reject);
    });
    ws.close();
    assert.deepEqual([...firsts.keys()].sort(), [0, 1]);
    for (const b of firsts.values()) assert.equal(b.readUInt16LE(0), 8080);
    assert.match(Buffer.concat(data).toString(), /^HTTP\/1\.[01] 200/);
  });

  test("berth attach, the CLI, streams a running container's output; interrupting it leaves the container running", async () => {
    const { spawn } = await import("node:child_process");
    const { BERTH_JS } = await import("../support/daemon");
    const cli = spawn(process.execPath, [BERTH_JS, "--socket", daemon.socket, "attach", "ticker"], { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((r) => cli.once("exit", (code, signal) => r(code ?? (signal ? 128 : null))));
    try {
      let out = "";
      cli.stdout.on("data", (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 100 && !/tick \d+\ntick \d+\n/.test(out); i++) await sleep(100);
      assert.match(out, /tick \d+\n/);
    } finally {
      process.kill(cli.pid!, "SIGINT");
      await exited;
    }
    const st = await daemon.client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: ticker });
    assert.equal(st.status!.state, "CONTAINER_RUNNING");
  });
});
