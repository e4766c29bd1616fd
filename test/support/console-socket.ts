// The receiving end of runc's console-socket protocol, as conmon plays it: listen on a unix
// socket, take the one message a runtime sends (the pty's name as data, its master as
// SCM_RIGHTS), then relay everything the container's terminal prints until the last slave closes.
// A few lines of Python, because Node's net module cannot receive ancillary data.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const RECEIVER = String.raw`
import array, errno, fcntl, os, socket, struct, sys, termios
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1])
srv.listen(1)
sys.stderr.write("listening\n")
sys.stderr.flush()
conn, _ = srv.accept()
data, fds, _, _ = socket.recv_fds(conn, 4096, 4)
conn.close()
srv.close()
master = fds[0]
rows, cols = struct.unpack("HHHH", fcntl.ioctl(master, termios.TIOCGWINSZ, b"\0" * 8))[:2]
out = sys.stdout.buffer
out.write(b"name=" + data + b"\nfds=%d\nsize=%d %d\n--\n" % (len(fds), rows, cols))
out.flush()
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError as e:
        if e.errno == errno.EIO:
            break
        raise
    if not chunk:
        break
    out.write(chunk)
    out.flush()
`;

/** Debian's python3 (bin/setup installs it), else whatever python3 is on PATH. */
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

export interface ConsoleReceiver {
  /** The socket to pass as --console-socket. */
  socket: string;
  /** What the receiver saw: the name sent, how many fds, the master's window size, then the terminal's output (CRLF made LF). */
  done: Promise<{ name: string; fds: number; size: string; output: string }>;
  /** Ends the receiver (by its PID) if it is still running. */
  stop(): void;
}

/** Starts a receiver listening on `dir`/`name`.sock; resolves once it accepts connections. */
export async function startConsoleReceiver(dir: string, name: string, timeoutMs = 20_000): Promise<ConsoleReceiver> {
  const socket = join(dir, `${name}.sock`);
  const p: ChildProcess = spawn(PYTHON, ["-c", RECEIVER, socket], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  p.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const done = new Promise<{ name: string; fds: number; size: string; output: string }>((resolve, reject) => {
    p.once("close", (code, signal) => {
      clearTimeout(timer);
      const [head, ...rest] = stdout.split("--\n");
      const fields = Object.fromEntries((head ?? "").split("\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      if (code !== 0 || fields.name === undefined) return reject(new Error(`console receiver: exit ${signal ?? code}: ${stderr}${stdout}`));
      resolve({ name: fields.name, fds: Number(fields.fds), size: fields.size ?? "", output: rest.join("--\n").replace(/\r\n/g, "\n") });
    });
  });
  done.catch(() => {});
  for (let i = 0; i < 500 && !stderr.includes("listening\n") && p.exitCode === null; i++) await sleep(10);
  if (!stderr.includes("listening\n")) {
    p.kill("SIGKILL");
    throw new Error(`console receiver did not start: ${stderr}`);
  }
  return {
    socket,
    done,
    stop: () => {
      if (p.pid && p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    },
  };
}
