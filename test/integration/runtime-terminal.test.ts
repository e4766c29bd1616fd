// Terminals through a console socket, against runc: with process.terminal the runtime allocates a
// pty in the container, sends its master to the socket (conmon's side, played here by a small
// receiver), and the process runs on the slave as its controlling terminal, sized as the spec asks.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Bundle, makeBundle, removeBundle, type Runtime, runRuntime } from "../support/bundle";
import { type ConsoleReceiver, startConsoleReceiver } from "../support/console-socket";
import { makeRoots, type Roots, RUNTIMES, removeRoots, runDetached, state } from "../support/runtime-pair";

// tty_nr (field 7 of /proc/PID/stat) is the controlling terminal: 136 << 8 | N for /dev/pts/N.
const TTY_SCRIPT = "tty; stty size 2>/dev/null || echo no size; test -t 0 && test -t 1 && test -t 2 && echo all three on the terminal; echo ctty=$(cut -d' ' -f7 /proc/$$/stat); echo done";

let roots: Roots;
let io: string;
const bundles: Bundle[] = [];
const receivers: ConsoleReceiver[] = [];
let seq = 0;

before(async () => {
  roots = await makeRoots();
  io = await mkdtemp(join(tmpdir(), "berth-tty-io-"));
});

after(async () => {
  for (const r of receivers) r.stop();
  await removeRoots(roots);
  for (const b of bundles) await removeBundle(b);
  await rm(io, { recursive: true, force: true });
});

async function receiver(name: string): Promise<ConsoleReceiver> {
  const r = await startConsoleReceiver(io, `${name}-${++seq}`);
  receivers.push(r);
  return r;
}

describe("berth runtime terminals match runc", () => {
  test("create --console-socket: the process runs on a pty of the spec's consoleSize", async () => {
    const seen = {} as Record<Runtime, unknown>;
    for (const rt of RUNTIMES) {
      const b = await makeBundle((s) => {
        s.process!.terminal = true;
        s.process!.consoleSize = { height: 30, width: 100 };
        s.process!.args = ["sh", "-c", TTY_SCRIPT];
      });
      bundles.push(b);
      const con = await receiver(rt);
      const id = `tty-${process.pid}-${++seq}`;
      const c = await runDetached(rt, roots[rt], ["create", "--console-socket", con.socket, "--bundle", b.dir, id], io, `${rt}-${id}`);
      assert.equal(c.code, 0, `${rt} create: ${c.stderr}`);
      assert.equal((await runRuntime(rt, roots[rt], ["start", id])).code, 0);
      seen[rt] = await con.done;
      assert.equal((await runRuntime(rt, roots[rt], ["delete", "--force", id])).code, 0);
    }
    assert.deepEqual(seen.berth, seen.runc);
    assert.deepEqual(seen.berth, {
      name: "/dev/ptmx",
      fds: 1,
      size: "30 100",
      output: `/dev/pts/0\n30 100\nall three on the terminal\nctty=${136 << 8}\ndone\n`,
    });
  });

  test("a terminal without --console-socket is refused", async () => {
    const codes = {} as Record<Runtime, number>;
    for (const rt of RUNTIMES) {
      const b = await makeBundle((s) => {
        s.process!.terminal = true;
      });
      bundles.push(b);
      const id = `tty-nosock-${process.pid}-${++seq}`;
      const c = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-${id}`);
      codes[rt] = c.code!;
      assert.match(c.stderr, /console.socket/, `${rt}: ${c.stderr}`);
      assert.ok(!(await runRuntime(rt, roots[rt], ["list", "-q"])).stdout.includes(id));
    }
    assert.deepEqual(codes, { runc: 1, berth: 1 });
  });

  // conmon's way: --detach with the socket (runc refuses a console socket without --detach).
  test("exec --detach --tty --console-socket: the exec'd process gets a pty of its own", async () => {
    const seen = {} as Record<Runtime, unknown>;
    for (const rt of RUNTIMES) {
      const b = await makeBundle((s) => {
        s.process!.args = ["sleep", "30"];
      });
      bundles.push(b);
      const id = `tty-exec-${process.pid}-${++seq}`;
      assert.equal((await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-${id}`)).code, 0);
      assert.equal((await runRuntime(rt, roots[rt], ["start", id])).code, 0);
      const con = await receiver(`${rt}-exec`);
      const e = await runDetached(rt, roots[rt], ["exec", "--detach", "--tty", "--console-socket", con.socket, id, "sh", "-c", TTY_SCRIPT], io, `${rt}-${id}-exec`);
      assert.equal(e.code, 0, `${rt} exec: ${e.stderr}`);
      seen[rt] = await con.done;
      assert.equal((await state(rt, roots[rt], id)).status, "running");
      assert.equal((await runRuntime(rt, roots[rt], ["delete", "--force", id])).code, 0);
    }
    assert.deepEqual(seen.berth, seen.runc);
    assert.deepEqual(seen.berth, { name: "/dev/ptmx", fds: 1, size: "0 0", output: `/dev/pts/0\nall three on the terminal\nctty=${136 << 8}\ndone\n` });
  });
});
