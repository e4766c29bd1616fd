// Which sysctls a container may set: runc's rule (libcontainer's config validator). The init
// writes them as root with every capability, before it drops any: a sysctl that is not in a
// namespace the container has of its own is the host's, and writing it would change the host
// (kernel.* outside the IPC set, vm.*, fs.* outside mqueue). So only these pass:
// - the System V IPC ones and fs.mqueue.*, with an IPC namespace;
// - net.*, with a network namespace that is not the caller's own;
// - kernel.domainname with a UTS namespace (kernel.hostname conflicts with the `hostname` field).

const IPC_SYSCTLS = new Set(["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]);

export interface SysctlNamespaces {
  /** The container has an IPC namespace (new or joined). */
  ipc: boolean;
  /** Its network namespace is not the host's (the caller's). */
  ownNet: boolean;
  /** It has a UTS namespace. */
  uts: boolean;
}

/** Why `key` may not be set in a container with these namespaces; undefined when it may. */
export function sysctlRefusal(key: string, ns: SysctlNamespaces): string | undefined {
  // runc accepts "/" as the separator too ("net/ipv4/ip_forward"); an empty part would make a path
  // that is not the sysctl named.
  const parts = key.split(/[./]/);
  if (parts.some((p) => p === "")) return `sysctl "${key}" is not a sysctl name (an empty part)`;
  const name = parts.join(".");
  if (IPC_SYSCTLS.has(name) || name.startsWith("fs.mqueue.")) {
    return ns.ipc ? undefined : `sysctl "${key}" is not allowed in the host's IPC namespace`;
  }
  if (name.startsWith("net.")) return ns.ownNet ? undefined : `sysctl "${key}" is not allowed in the host's network namespace`;
  if (ns.uts && name === "kernel.domainname") return undefined;
  if (ns.uts && name === "kernel.hostname") return `sysctl "${key}" is not allowed: it conflicts with the "hostname" field`;
  return `sysctl "${key}" is not in a separate kernel namespace: setting it in a container would set it for the whole host`;
}
