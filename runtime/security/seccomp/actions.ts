// OCI seccomp action names → the SECCOMP_RET_* values a filter returns, as runc maps them
// (libcontainer/seccomp/seccomp_linux.go getAction): SCMP_ACT_KILL is KILL_THREAD, ERRNO and
// TRACE carry errnoRet (EPERM when absent), user notification is not supported.
import { InvalidArgumentError, UnimplementedError } from "../../errors";
import type { SeccompAction } from "./types";

export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

export const EPERM = 1;
export const ENOSYS = 38;

/** What a filter returns for `action`; `errnoRet` only matters to ERRNO and TRACE. */
export function actionValue(action: SeccompAction, errnoRet: number | undefined, where: string): number {
  const data = () => {
    const errno = errnoRet ?? EPERM;
    if (!Number.isInteger(errno) || errno < 0 || errno > 0xffff) {
      throw new InvalidArgumentError(`seccomp: ${where}: errnoRet ${errno} is not a number from 0 to 65535`);
    }
    return errno;
  };
  switch (action) {
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return SECCOMP_RET.KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS":
      return SECCOMP_RET.KILL_PROCESS;
    case "SCMP_ACT_TRAP":
      return SECCOMP_RET.TRAP;
    case "SCMP_ACT_ERRNO":
      return (SECCOMP_RET.ERRNO | data()) >>> 0;
    case "SCMP_ACT_TRACE":
      return (SECCOMP_RET.TRACE | data()) >>> 0;
    case "SCMP_ACT_LOG":
      return SECCOMP_RET.LOG;
    case "SCMP_ACT_ALLOW":
      return SECCOMP_RET.ALLOW;
    case "SCMP_ACT_NOTIFY":
      throw new UnimplementedError(
        `seccomp: ${where}: SCMP_ACT_NOTIFY (user notification to a seccomp agent) is not supported by berth`,
      );
    default:
      throw new InvalidArgumentError(`seccomp: ${where}: string ${String(action)} is not a valid action for seccomp`);
  }
}

/** runc adds no -ENOSYS stub when the default already lets unknown syscalls through. */
export function isAllowLike(action: SeccompAction): boolean {
  return action === "SCMP_ACT_ALLOW" || action === "SCMP_ACT_LOG" || action === "SCMP_ACT_TRACE";
}
