// Entry of dist/berth-init.cjs, the init (and exec) stage that `create` and `exec` start (not for
// users): one CommonJS file with only what the stage needs, because its Node boot is on the path
// of every container start. CommonJS, since Node 20 loads it without starting its ES module
// loader; the same code runs as `berth runtime init CONFIG` where there is no build (tsx).
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { initMain } from "../../runtime/oci/init";
import { trace } from "../../runtime/oci/trace";

trace("init:loaded");
initMain(linuxSyscalls, process.argv[2] ?? "");
