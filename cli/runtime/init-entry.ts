// `berth runtime init CONFIG`: the container's init stage, started by `create` (not for users).
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { initMain } from "../../runtime/oci/init";
import { trace } from "../../runtime/oci/trace";

export async function run(argv: string[]): Promise<number> {
  trace("init:loaded");
  return initMain(linuxSyscalls, argv[0] ?? "");
}
