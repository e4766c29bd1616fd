// runc's console-socket protocol, sender side: conmon listens on a unix stream socket; the runtime
// connects and sends one message whose data is a name and whose SCM_RIGHTS carries the pty master.
// Synchronous, because the runtime's second stage runs without an event loop turn before execve.
// Node's net module cannot send ancillary data, hence sendmsg through libc.
import koffi from "koffi";
import { InvalidArgumentError } from "../errors";
import { errnoError, libcFunction, retryOnEintr } from "./syscalls";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
// A peer that went away must fail the send with EPIPE, not kill us with SIGPIPE.
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;
/** runc's utils.MaxNameLen: the receiver reads the name into a buffer this large. */
const MAX_NAME_LEN = 4096;

/** Connect to `socketPath` and send `fd` with `name` as the message data. */
export function sendFd(socketPath: string, fd: number, name: string): void {
  const sock = connectUnixSocket(socketPath);
  try {
    sendFdOver(sock, fd, name);
  } finally {
    libcFunction("int close(int fd)")(sock);
  }
}

/** A connected unix socket fd (close-on-exec), SOCK_STREAM unless told otherwise. */
export function connectUnixSocket(socketPath: string, type = SOCK_STREAM): number {
  const path = Buffer.from(socketPath);
  if (path.length === 0 || path.length >= SUN_PATH_MAX) {
    throw new InvalidArgumentError(`unix socket path must be 1..${SUN_PATH_MAX - 1} bytes: ${socketPath}`);
  }
  // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }, path NUL-terminated.
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, 2);
  const sock = Number(libcFunction("int socket(int domain, int type, int protocol)")(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (sock === -1) throw errnoError("socket", socketPath);
  const connect = libcFunction("int connect(int fd, const void *addr, uint32_t addrlen)");
  if (connect(sock, addr, 2 + path.length + 1) === -1) {
    const err = errnoError("connect", socketPath);
    libcFunction("int close(int fd)")(sock);
    throw err;
  }
  return sock;
}

/** Send one message on a connected unix socket: data `name`, one SCM_RIGHTS carrying `fd`. */
export function sendFdOver(sock: number, fd: number, name: string): void {
  const data = Buffer.from(name);
  // An empty payload on a stream socket would carry the fd without a byte to attach it to.
  if (data.length === 0 || data.length >= MAX_NAME_LEN) {
    throw new InvalidArgumentError(`fd name must be 1..${MAX_NAME_LEN - 1} bytes: ${name}`);
  }
  // struct iovec { void *iov_base; size_t iov_len; }
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(koffi.address(data)), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } + one int, in
  // CMSG_SPACE(4) = 24 bytes; cmsg_len is CMSG_LEN(4) = 20 (header 16 + data 4, no tail padding).
  const control = Buffer.alloc(24);
  control.writeBigUInt64LE(20n, 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  control.writeInt32LE(fd, 16);
  // struct msghdr (56 bytes): name@0 namelen@8 iov@16 iovlen@24 control@32 controllen@40 flags@48.
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(BigInt(koffi.address(iov)), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(BigInt(koffi.address(control)), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  const sendmsg = libcFunction("long sendmsg(int fd, const void *msg, int flags)");
  const sent = retryOnEintr(() => sendmsg(sock, msg, MSG_NOSIGNAL));
  if (sent === -1) throw errnoError("sendmsg", undefined, `fd ${fd} as ${name}`);
  // A blocking unix stream socket sends all of so small a message or fails; a short count would
  // leave the receiver with a truncated name, so it is reported rather than silently accepted.
  if (sent !== data.length) throw new Error(`sendmsg: sent ${sent} of ${data.length} bytes of ${name}`);
}
