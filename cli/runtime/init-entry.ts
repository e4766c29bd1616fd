// `berth runtime init`: the container's init (or exec) stage, started by `create` and `exec` where
// there is no build (not for users; the build's is dist/berth-init.cjs). Its configuration comes
// on fd 3.
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { initMain } from "../../runtime/oci/init";
import { trace } from "../../runtime/oci/trace";

export async function run(): Promise<number> {
  trace("init:loaded");
  return initMain(linuxSyscalls);
}
