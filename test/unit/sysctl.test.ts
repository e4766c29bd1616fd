// runc's rule for the sysctls a container may set, given its namespaces.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sysctlRefusal } from "../../runtime/security/sysctl";

const all = { ipc: true, ownNet: true, uts: true };

describe("sysctl rule", () => {
  test("namespaced ones pass with their namespace", () => {
    for (const k of ["kernel.shmmax", "kernel.sem", "fs.mqueue.msg_max", "net.ipv4.ip_forward", "net/ipv4/ip_forward", "kernel.domainname"]) assert.equal(sysctlRefusal(k, all), undefined, k);
  });

  test("without their namespace, or host-wide ones, are refused with the reason", () => {
    assert.match(sysctlRefusal("kernel.shmmax", { ...all, ipc: false })!, /host's IPC namespace/);
    assert.match(sysctlRefusal("fs.mqueue.msg_max", { ...all, ipc: false })!, /host's IPC namespace/);
    assert.match(sysctlRefusal("net.core.somaxconn", { ...all, ownNet: false })!, /host's network namespace/);
    assert.match(sysctlRefusal("kernel.domainname", { ...all, uts: false })!, /not in a separate kernel namespace/);
    assert.match(sysctlRefusal("kernel.hostname", all)!, /conflicts with the "hostname" field/);
    for (const k of ["kernel.panic", "vm.overcommit_memory", "fs.file-max", "kernel.printk_ratelimit_burst"]) assert.match(sysctlRefusal(k, all)!, /for the whole host/, k);
  });

  test("names with an empty part are refused: the path written would not be the sysctl named", () => {
    for (const k of ["net..ipv4", "net/../kernel/panic", ".net.ipv4", "net.ipv4."]) assert.match(sysctlRefusal(k, all)!, /not a sysctl name/, k);
  });
});
