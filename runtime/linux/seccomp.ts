// Loads a compiled seccomp filter (runtime/security/seccomp/compile.ts) into the calling thread,
// as runc's patchbpf does: seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog), or the older
// prctl(PR_SET_SECCOMP) when no flags are asked for and the kernel predates seccomp(2).
// The kernel accepts a filter only from a task with no_new_privs set or CAP_SYS_ADMIN in its
// user namespace; setNoNewPrivs() is here for callers that need it first.
// libc functions are declared on first use: loading koffi and binding costs milliseconds.
import { getSystemErrorName } from "node:util";
import koffi, { type TypeObject } from "koffi";
import {
  type BerthError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  PermissionDeniedError,
  UnimplementedError,
} from "../errors";

const SYS_SECCOMP_X86_64 = 317;
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_MODE_FILTER = 2;
const SECCOMP_FILTER_FLAG_TSYNC = 1;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_SET_SECCOMP = 22;
const EACCES = 13;
const EINVAL = 22;
const ENOSYS = 38;
const BPF_MAXINSNS = 4096;

interface Calls {
  syscall(nr: number, ...typesAndValues: unknown[]): number | bigint;
  prctl(option: number, ...typesAndValues: unknown[]): number;
  /** struct sock_fprog { unsigned short len; struct sock_filter *filter; } */
  fprog: TypeObject;
}

let calls: Calls | undefined;

function libc(): Calls {
  if (calls) return calls;
  if (process.arch !== "x64") {
    throw new UnimplementedError(`seccomp: loading filters is implemented for x86_64 only, not ${process.arch}`);
  }
  const lib = koffi.load("libc.so.6");
  const fprog = koffi.struct({ len: "uint16_t", filter: "void *" });
  calls = {
    syscall: lib.func("long syscall(long number, ...)"),
    prctl: lib.func("int prctl(int option, ...)"),
    fprog: koffi.pointer(fprog),
  };
  return calls;
}

/** prctl(PR_SET_NO_NEW_PRIVS, 1): execve can no longer grant privileges (setuid bits, file caps). */
export function setNoNewPrivs(): void {
  const c = libc();
  const rc = c.prctl(PR_SET_NO_NEW_PRIVS, "unsigned long", 1n, "unsigned long", 0n, "unsigned long", 0n, "unsigned long", 0n);
  if (rc !== 0) throw failure("prctl(PR_SET_NO_NEW_PRIVS)", koffi.errno());
}

/**
 * Installs `program` (struct sock_filter[]) with seccomp(2) `flags` on the calling thread, or on
 * every thread of the process with SECCOMP_FILTER_FLAG_TSYNC. Filters stack: each call adds one.
 */
export function loadSeccompFilter(program: Buffer, flags: number): void {
  const count = program.length / 8;
  if (!Number.isInteger(count) || count < 1 || count > BPF_MAXINSNS) {
    throw new InvalidArgumentError(
      `seccomp: a filter of ${program.length} bytes is not 1 to ${BPF_MAXINSNS} whole 8-byte instructions`,
    );
  }
  const c = libc();
  const prog = { len: count, filter: program };
  const rc = Number(
    c.syscall(SYS_SECCOMP_X86_64, "unsigned int", SECCOMP_SET_MODE_FILTER, "unsigned int", flags >>> 0, c.fprog, prog),
  );
  if (rc === 0) return;
  if (rc > 0 && flags & SECCOMP_FILTER_FLAG_TSYNC) {
    throw new FailedPreconditionError(
      `seccomp: thread ${rc} could not take the filter (SECCOMP_FILTER_FLAG_TSYNC): it runs a different seccomp filter`,
    );
  }
  const errno = koffi.errno();
  if (errno !== ENOSYS) throw failure(`seccomp(SECCOMP_SET_MODE_FILTER, flags=0x${flags.toString(16)})`, errno);
  if (flags !== 0) {
    throw new FailedPreconditionError(
      `seccomp: the kernel lacks seccomp(2) (ENOSYS), which filter flags 0x${flags.toString(16)} need`,
    );
  }
  const old = c.prctl(PR_SET_SECCOMP, "unsigned long", BigInt(SECCOMP_MODE_FILTER), c.fprog, prog, "unsigned long", 0n, "unsigned long", 0n);
  if (old !== 0) throw failure("prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)", koffi.errno());
}

function failure(call: string, errno: number): BerthError {
  const code = errno > 0 ? getSystemErrorName(-errno) : `errno ${errno}`;
  switch (errno) {
    case EACCES:
      return new PermissionDeniedError(
        `seccomp: ${call} failed with ${code}: set no_new_privs first or hold CAP_SYS_ADMIN`,
      );
    case EINVAL:
      return new InvalidArgumentError(
        `seccomp: ${call} failed with ${code}: the kernel rejected the program or does not know a flag`,
      );
    default:
      return new InternalError(`seccomp: ${call} failed with ${code}`);
  }
}
