// Pseudo-terminals for containers with `terminal: true`: the runtime allocates the pair, keeps
// the slave for the container's stdio and hands the master to conmon over the console socket.
import { errnoError, libcFunction, O } from "./syscalls";

const TIOCSWINSZ = 0x5414;
const PATH_MAX = 4096;

export interface Pty {
  /** The master fd, close-on-exec: it goes to conmon, never into the container. */
  master: number;
  /** The slave's path, /dev/pts/N of the devpts instance that /dev/ptmx belongs to. */
  slavePath: string;
}

export function openPty(): Pty {
  // O_NOCTTY: the runtime must not acquire the terminal itself; the container's setsid + TIOCSCTTY does.
  const master = Number(libcFunction("int posix_openpt(int flags)")(O.RDWR | O.NOCTTY | O.CLOEXEC));
  if (master === -1) throw errnoError("posix_openpt", "/dev/ptmx");
  try {
    if (libcFunction("int grantpt(int fd)")(master) !== 0) throw errnoError("grantpt", undefined, `fd ${master}`);
    if (libcFunction("int unlockpt(int fd)")(master) !== 0) throw errnoError("unlockpt", undefined, `fd ${master}`);
    const buf = Buffer.alloc(PATH_MAX);
    // ptsname_r returns the error number itself rather than -1.
    const rc = libcFunction("int ptsname_r(int fd, _Out_ char *buf, size_t buflen)")(master, buf, buf.length);
    if (rc !== 0) throw errnoError("ptsname_r", undefined, `fd ${master}`, rc);
    return { master, slavePath: buf.toString("utf8", 0, buf.indexOf(0)) };
  } catch (err) {
    libcFunction("int close(int fd)")(master);
    throw err;
  }
}

/** Set the terminal's size (struct winsize), as runc does with the OCI `consoleSize`. */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  const winsize = Buffer.alloc(8);
  winsize.writeUInt16LE(rows, 0);
  winsize.writeUInt16LE(cols, 2);
  const ioctl = libcFunction("int ioctl(int fd, unsigned long request, ...)");
  if (ioctl(fd, TIOCSWINSZ, "void *", winsize) === -1) throw errnoError("ioctl", undefined, `fd ${fd} TIOCSWINSZ`);
}
