// The CLI's handling of crictl-style config files and of what users type for ids.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ago } from "../../cli/pods/format";
import { resolveContainer } from "../../cli/pods/resolve";
import { camelCaseKeys } from "../../cli/pods/run-pod";
import type { CriClient } from "../../cri/client";
import { Code } from "../../runtime/errors";

describe("run-pod config files", () => {
  test("snake_case field names become the camelCase the client sends; label and sysctl keys stay as written", () => {
    const doc = {
      metadata: { name: "p" },
      log_directory: "/var/log/pods/p",
      labels: { "app.kubernetes.io/name": "p", some_label: "x" },
      linux: { security_context: { namespace_options: { network: "POD" } }, sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" } },
      port_mappings: [{ container_port: 80, host_port: 8080 }],
    };
    assert.deepEqual(camelCaseKeys(doc), {
      metadata: { name: "p" },
      logDirectory: "/var/log/pods/p",
      labels: { "app.kubernetes.io/name": "p", some_label: "x" },
      linux: { securityContext: { namespaceOptions: { network: "POD" } }, sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" } },
      portMappings: [{ containerPort: 80, hostPort: 8080 }],
    });
  });
});

describe("ids and names", () => {
  const fake = (ids: Array<[string, string]>) =>
    ({ runtimeCall: async () => ({ containers: ids.map(([id, name]) => ({ id, metadata: { name } })) }) }) as unknown as CriClient;

  test("a unique prefix or name resolves; an ambiguous one names the candidates; none is NOT_FOUND", async () => {
    const client = fake([
      ["abc111", "web"],
      ["abc222", "db"],
    ]);
    assert.equal((await resolveContainer(client, "abc1")).id, "abc111");
    assert.equal((await resolveContainer(client, "db")).id, "abc222");
    await assert.rejects(resolveContainer(client, "abc"), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /abc111.*abc222/.test(e.message));
    await assert.rejects(resolveContainer(client, "zzz"), (e: { code: number }) => e.code === Code.NOT_FOUND);
  });

  test("ages read as crictl prints them", () => {
    const now = 1_700_000_000_000;
    const ns = (ms: number) => (BigInt(ms) * 1_000_000n).toString();
    assert.equal(ago(ns(now - 300), now), "Less than a second ago");
    assert.equal(ago(ns(now - 5_000), now), "5 seconds ago");
    assert.equal(ago(ns(now - 120_000), now), "2 minutes ago");
    assert.equal(ago(ns(now - 3_600_000), now), "1 hour ago");
  });
});

test("a name shared by a restarted container and its dead instance resolves to the running one; two running ones are ambiguous", async () => {
  const c = (id: string, state: string) => ({ id, state, metadata: { name: "httpd", attempt: 0 } });
  const client = (containers: unknown[]) => ({ runtimeCall: async () => ({ containers }) }) as never;
  assert.equal((await resolveContainer(client([c("aaa", "CONTAINER_EXITED"), c("bbb", "CONTAINER_RUNNING")]), "httpd")).id, "bbb");
  await assert.rejects(resolveContainer(client([c("aaa", "CONTAINER_RUNNING"), c("bbb", "CONTAINER_RUNNING")]), "httpd"), /matches 2 containers/);
});
