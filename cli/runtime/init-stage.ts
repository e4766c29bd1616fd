// Entry of dist/berth-init.cjs, the init (and exec) stage that `create` and `exec` start as
// `berth runtime init` (not for users): one CommonJS bundle with only what the stage needs, which
// dist/berth.js loads with its code cache, because its Node boot is on the path of every container
// start. Where there is no build (tsx), `berth runtime init` runs the same code (init-entry.ts).
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { initMain } from "../../runtime/oci/init";
import { trace } from "../../runtime/oci/trace";

trace("init:loaded");
initMain(linuxSyscalls);
