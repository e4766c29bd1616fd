// A TCP connection into a pod, as CRI PortForward needs it: to 127.0.0.1:PORT inside the pod's
// network namespace. The socket is made and connected through libc while the calling thread is in
// that namespace (a socket belongs to the namespace it was made in), then handed to Node. Loopback
// connects complete (or are refused) at once, so the blocking connect never waits on the network.
import { Socket } from "node:net";
import { FailedPreconditionError } from "../errors";
import { errnoError, libcFunction } from "../linux/syscalls";
import type { Syscalls } from "../linux/types";
import { inNetworkNamespace, ThreadNotReturnedError } from "./namespaces";

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;

function connectLoopback(port: number): number {
  const sock = Number(libcFunction("int socket(int domain, int type, int protocol)")(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock < 0) throw errnoError("socket", `127.0.0.1:${port}`);
  // struct sockaddr_in { sa_family_t sin_family; in_port_t sin_port; struct in_addr sin_addr; char zero[8]; }
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(AF_INET, 0);
  addr.writeUInt16BE(port, 2);
  addr.set([127, 0, 0, 1], 4);
  if (Number(libcFunction("int connect(int fd, const void *addr, uint32_t addrlen)")(sock, addr, 16)) !== 0) {
    const err = errnoError("connect", `127.0.0.1:${port} in the pod`);
    libcFunction("int close(int fd)")(sock);
    throw err;
  }
  return sock;
}

/** Connects to `port` on the loopback of the network namespace at `netns` ("" = the host's). */
export function dialPodPort(sys: Syscalls, netns: string, port: number): Socket {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FailedPreconditionError(`port ${port} is not a TCP port`);
  let fd: number;
  try {
    fd = netns ? inNetworkNamespace(sys, netns, () => connectLoopback(port)) : connectLoopback(port);
  } catch (err) {
    if (err instanceof ThreadNotReturnedError) throw err;
    throw new FailedPreconditionError(`cannot connect to port ${port} in the pod: ${(err as Error).message}`, { cause: err });
  }
  return new Socket({ fd, readable: true, writable: true });
}
