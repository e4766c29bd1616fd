// conmon's attach socket, client side: a SOCK_SEQPACKET unix socket (`attach` in the bundle conmon
// was given). Every packet conmon sends is one chunk of output whose first byte names the pipe (2
// stdout, 3 stderr); what the client sends is the process's stdin, as is. Node's net module cannot
// make a SEQPACKET socket, so the socket is made through libc and handed to a libuv pipe handle,
// which reads one packet per read(): packet boundaries survive. The path is reached through an
// O_PATH descriptor of its directory, as podman does: bundle paths are longer than sun_path.
import { Socket } from "node:net";
import { basename, dirname } from "node:path";
import { PassThrough } from "node:stream";
import { libcFunction } from "../linux/syscalls";
import { connectUnixSocket, SOCK_SEQPACKET } from "../linux/unix-socket";

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

/** conmon's stdpipe_t. */
export const ATTACH_PIPE = { stdin: 1, stdout: 2, stderr: 3 } as const;

interface PipeHandle {
  open(fd: number): number;
}
type PipeCtor = new (type: number) => PipeHandle;

function pipeWrap(): { Pipe: PipeCtor; constants: { SOCKET: number } } {
  // The public net API has no way to adopt a non-stream socket; the pipe binding does.
  return (process as unknown as { binding(name: string): { Pipe: PipeCtor; constants: { SOCKET: number } } }).binding("pipe_wrap");
}

/** Connects to the attach socket at `path` (the packet socket, as a Node stream). */
export function connectAttachSocket(path: string): Socket {
  const open = libcFunction("int open(const char *path, int flags)");
  const close = libcFunction("int close(int fd)");
  const dfd = Number(open(dirname(path), O_PATH | O_CLOEXEC));
  if (dfd < 0) throw new Error(`cannot open ${dirname(path)} to reach conmon's attach socket`);
  let fd: number;
  try {
    fd = connectUnixSocket(`/proc/self/fd/${dfd}/${basename(path)}`, SOCK_SEQPACKET);
  } finally {
    close(dfd);
  }
  const { Pipe, constants } = pipeWrap();
  const handle = new Pipe(constants.SOCKET);
  const rc = handle.open(fd);
  if (rc !== 0) {
    close(fd);
    throw new Error(`cannot adopt conmon's attach socket ${path} (libuv error ${rc})`);
  }
  return new Socket({ handle, readable: true, writable: true } as unknown as ConstructorParameters<typeof Socket>[0]);
}

/**
 * A process's stdio through an attach socket: output split by pipe, stdin written as is, and a
 * half-close for the end of stdin (conmon then closes the process's stdin unless told to keep it).
 */
export class AttachedStdio {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  /** Resolves when conmon closes the socket (the process's output is over) or the client detaches. */
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.on("data", (packet: Buffer) => {
      if (packet.length < 1) return;
      const data = packet.subarray(1);
      if (packet[0] === ATTACH_PIPE.stderr) this.stderr.write(data);
      else this.stdout.write(data);
    });
    this.closed = new Promise((resolve) => {
      const end = () => {
        this.stdout.end();
        this.stderr.end();
        resolve();
      };
      socket.once("close", end);
      socket.once("end", end);
    });
    // A vanished conmon is the end of the session, not a daemon crash.
    socket.on("error", () => socket.destroy());
  }

  writeStdin(data: Buffer | string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(data);
  }

  closeStdin(): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.end();
  }

  detach(): void {
    this.socket.destroy();
  }
}
