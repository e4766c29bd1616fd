// `berth runtime init CONFIG`: the container's init stage, started by `create` (not for users).
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { initMain } from "../../runtime/oci/init";

export async function run(argv: string[]): Promise<number> {
  return initMain(linuxSyscalls, argv[0] ?? "");
}
