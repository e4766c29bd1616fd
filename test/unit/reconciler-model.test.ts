// The reconciler's pure parts: pod specs → CRI requests, the effective-spec hash, env
// resolution, quantities, the rollout step, the plan and its changed fields, and the back-off.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1ConfigMap, V1PodSpec } from "@kubernetes/client-node";
import { RestartBackoff } from "../../reconciler/backoff";
import { expand, resolveEnv } from "../../reconciler/desired/env";
import { buildDesired, scaled } from "../../reconciler/desired/model";
import { buildPod, defaultPullPolicy, type PodBuildContext } from "../../reconciler/desired/pod";
import { bytesOf, milliCpu } from "../../reconciler/desired/quantity";
import { claimsMeet, refuseByHostPorts } from "../../reconciler/host-ports";
import { actualPods, changedFields, formatPlan, plan } from "../../reconciler/plan";
import { type Replica, rolloutStep } from "../../reconciler/rollout";
import type { DesiredDeployment, ManifestObject, ManifestSet } from "../../reconciler/types";

const cm: V1ConfigMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg" }, data: { GREETING: "hi", "bad key": "x", "index.html": "<h1>x</h1>" } };
const ctx: PodBuildContext = { podsDir: "/r/pods", logsDir: "/r/logs", seccompDir: "/m", configMaps: (ns, n) => (ns === "default" && n === "cfg" ? cm : undefined) };

function podInput(spec: V1PodSpec, name = "web") {
  return { owner: { kind: "Pod" as const, namespace: "default", name }, source: { file: "web.yaml", line: 1, column: 1 }, namespace: "default", name, labels: { app: "web" }, annotations: {}, spec, field: "spec" };
}

const webSpec = (): V1PodSpec => ({
  containers: [
    {
      name: "httpd",
      image: "busybox:1.36",
      command: ["httpd", "-p", "$(PORT)"],
      env: [{ name: "PORT", value: "80" }, { name: "URL", value: "http://x:$(PORT)/$$(PORT)" }, { name: "G", valueFrom: { configMapKeyRef: { name: "cfg", key: "GREETING" } } }],
      envFrom: [{ configMapRef: { name: "cfg" }, prefix: "CM_" }],
      ports: [{ containerPort: 80, hostPort: 8080, hostIP: "127.0.0.1", name: "http" }],
      volumeMounts: [{ name: "content", mountPath: "/www" }],
      resources: { requests: { cpu: "250m", memory: "64Mi" }, limits: { cpu: "500m", memory: "128Mi" } },
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] } },
    },
  ],
  volumes: [{ name: "content", configMap: { name: "cfg" } }],
});

describe("pod spec to CRI", () => {
  test("env: envFrom with prefix, then env overriding, $(VAR) expanded and $$ escaped, ConfigMap keys resolved", () => {
    const env = resolveEnv(webSpec().containers[0]!, "default", "spec.containers[0]", ctx.configMaps);
    const m = Object.fromEntries(env.map((e) => [e.key, e.value]));
    assert.equal(m.CM_GREETING, "hi");
    assert.equal(m["CM_bad key"], undefined, "keys that are not variable names are skipped");
    assert.equal(m.URL, "http://x:80/$(PORT)");
    assert.equal(m.G, "hi");
    assert.equal(expand("$(NOPE) $(PORT", () => undefined), "$(NOPE) $(PORT");
  });

  test("a missing ConfigMap names the field and the ConfigMap; optional ones are skipped", () => {
    const spec = webSpec();
    spec.containers[0]!.envFrom = [{ configMapRef: { name: "missing" } }];
    assert.throws(() => buildPod(podInput(spec), ctx), /spec\.containers\[0\]\.envFrom\[0\]\.configMapRef: ConfigMap default\/missing is not defined in the folder/);
    spec.containers[0]!.envFrom = [{ configMapRef: { name: "missing", optional: true } }];
    assert.doesNotThrow(() => buildPod(podInput(spec), ctx));
  });

  test("sandbox and container configs carry what kubelet would send", () => {
    const p = buildPod(podInput(webSpec()), ctx);
    assert.deepEqual(p.sandbox.portMappings, [{ protocol: "TCP", containerPort: 80, hostPort: 8080, hostIp: "127.0.0.1" }]);
    assert.equal(p.sandbox.metadata?.uid, p.uid);
    assert.equal(p.sandbox.labels?.["berth.io/managed-by"], "berth");
    assert.equal(p.sandbox.annotations?.["berth.io/spec-hash"], p.hash);
    assert.equal(p.sandbox.logDirectory, `/r/logs/default_web_${p.uid}`);
    const c = p.containers[0]!;
    assert.deepEqual(c.config.command, ["httpd", "-p", "80"]);
    assert.equal(c.config.linux?.resources?.cpuShares, "256");
    assert.equal(c.config.linux?.resources?.cpuQuota, "50000");
    assert.equal(c.config.linux?.resources?.memoryLimitInBytes, String(128 * 2 ** 20));
    assert.equal(c.config.linux?.securityContext?.noNewPrivs, true);
    assert.deepEqual(c.config.linux?.securityContext?.capabilities?.dropCapabilities, ["ALL"]);
    assert.equal(c.config.linux?.securityContext?.seccomp?.profileType, "RuntimeDefault");
    assert.deepEqual(c.config.mounts, [{ containerPath: "/www", hostPath: `/r/pods/${p.uid}/volumes/content`, readonly: true, propagation: "PROPAGATION_PRIVATE" }]);
    assert.equal(c.namedPorts.http, 80);
    const vol = p.volumes[0]!;
    assert.equal(vol.kind, "configMap");
    if (vol.kind === "configMap") assert.equal(vol.files["index.html"]?.data.toString(), "<h1>x</h1>");
  });

  test("the hash covers the whole effective spec: image, env, a ConfigMap's content; key order does not matter", () => {
    const base = buildPod(podInput(webSpec()), ctx).hash;
    assert.equal(buildPod(podInput(JSON.parse(JSON.stringify(webSpec()))), ctx).hash, base);
    const image = webSpec();
    image.containers[0]!.image = "busybox:1.37";
    assert.notEqual(buildPod(podInput(image), ctx).hash, base);
    const changedCm = { ...ctx, configMaps: () => ({ ...cm, data: { ...cm.data, "index.html": "<h1>y</h1>" } }) };
    assert.notEqual(buildPod(podInput(webSpec()), changedCm).hash, base);
    const probe = webSpec();
    probe.containers[0]!.readinessProbe = { tcpSocket: { port: 80 } };
    assert.notEqual(buildPod(podInput(probe), ctx).hash, base);
  });

  test("quantities and pull policies as Kubernetes reads them", () => {
    assert.equal(milliCpu("250m", "x"), 250);
    assert.equal(milliCpu("0.5", "x"), 500);
    assert.equal(milliCpu(2, "x"), 2000);
    assert.equal(bytesOf("128Mi", "x"), 134217728);
    assert.equal(bytesOf("1G", "x"), 1e9);
    assert.equal(bytesOf("1e3", "x"), 1000);
    assert.throws(() => bytesOf("12 apples", "spec.containers[0].resources.limits.memory"), /limits\.memory: "12 apples" is not a Kubernetes quantity/);
    assert.equal(defaultPullPolicy("busybox"), "Always");
    assert.equal(defaultPullPolicy("busybox:latest"), "Always");
    assert.equal(defaultPullPolicy("127.0.0.1:5000/busybox"), "Always");
    assert.equal(defaultPullPolicy("busybox:1.36"), "IfNotPresent");
    assert.equal(defaultPullPolicy("busybox@sha256:abc"), "IfNotPresent");
    assert.equal(scaled("25%", 4, true), 1);
    assert.equal(scaled("30%", 4, true), 2);
    assert.equal(scaled("30%", 4, false), 1);
  });
});

function set(objects: ManifestObject[]): ManifestSet {
  return { root: "/m", resolvedRoot: "/m", objects, diagnostics: [], brokenFiles: [] };
}

function deployment(replicas: number, image: string, maxUnavailable: number | string = 0): DesiredDeployment {
  const o: ManifestObject = {
    key: { kind: "Deployment", namespace: "default", name: "worker" },
    source: { file: "w.yaml", line: 1, column: 1 },
    body: {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "worker" },
      spec: {
        replicas,
        selector: { matchLabels: { app: "w" } },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable } },
        template: { metadata: { labels: { app: "w" } }, spec: { containers: [{ name: "w", image }] } },
      },
    },
  };
  return buildDesired(set([o]), [], ctx).deployments[0]!;
}

describe("Deployment rollout", () => {
  test("replicas are named NAME-TEMPLATEHASH-N and the template hash follows the template", () => {
    const a = deployment(2, "busybox:1");
    assert.deepEqual(
      a.pods.map((p) => p.name),
      [`worker-${a.templateHash}-0`, `worker-${a.templateHash}-1`],
    );
    assert.notEqual(deployment(2, "busybox:2").templateHash, a.templateHash);
    assert.equal(deployment(3, "busybox:1").templateHash, a.templateHash, "scaling keeps the template");
  });

  test("maxUnavailable 0, maxSurge 1: one new replica at a time, an old one goes only when a new one is ready", () => {
    const v1 = deployment(2, "busybox:1");
    const v2 = deployment(2, "busybox:2");
    const old: Replica[] = v1.pods.map((p) => ({ uid: p.uid, name: p.name, templateHash: v1.templateHash, ready: true }));
    let step = rolloutStep(v2, old);
    assert.deepEqual(
      step.create.map((p) => p.name),
      [v2.pods[0]!.name],
    );
    assert.equal(step.remove.length, 0);
    const new0 = { uid: v2.pods[0]!.uid, name: v2.pods[0]!.name, templateHash: v2.templateHash, ready: false };
    step = rolloutStep(v2, [...old, new0]);
    assert.equal(step.create.length, 0, "no room above replicas + maxSurge");
    assert.equal(step.remove.length, 0, "nothing old goes while the new one is not ready");
    step = rolloutStep(v2, [...old, { ...new0, ready: true }]);
    assert.deepEqual(
      step.remove.map((r) => r.name),
      [old[0]!.name],
    );
    step = rolloutStep(v2, [old[1]!, { ...new0, ready: true }]);
    assert.deepEqual(
      step.create.map((p) => p.name),
      [v2.pods[1]!.name],
    );
    const done = v2.pods.map((p) => ({ uid: p.uid, name: p.name, templateHash: v2.templateHash, ready: true }));
    step = rolloutStep(v2, [old[1]!, ...done]);
    assert.deepEqual(
      step.remove.map((r) => r.name),
      [old[1]!.name],
    );
    assert.equal(rolloutStep(v2, done).complete, true);
  });

  test("scaling down removes the replicas above the count; scaling up creates the missing ones at once", () => {
    const four = deployment(4, "busybox:1");
    const running = four.pods.map((p) => ({ uid: p.uid, name: p.name, templateHash: four.templateHash, ready: true }));
    const one = deployment(1, "busybox:1");
    const step = rolloutStep(one, running);
    assert.deepEqual(
      step.remove.map((r) => r.name).sort(),
      running.slice(1).map((r) => r.name),
    );
    assert.equal(rolloutStep(four, running.slice(0, 1)).create.length, 3);
  });
});

describe("plan", () => {
  test("create, replace with the changed fields, and delete what left the folder", () => {
    const before = buildPod(podInput(webSpec()), ctx);
    const edited = webSpec();
    edited.containers[0]!.image = "busybox:1.37";
    edited.containers[0]!.env = [{ name: "PORT", value: "81" }];
    const after = buildPod(podInput(edited), ctx);
    const gone = buildPod(podInput(webSpec(), "old"), ctx);
    const sandboxes = [before, gone].map((p) => ({ id: `sb-${p.name}`, metadata: p.sandbox.metadata, state: "SANDBOX_READY", createdAt: "0", labels: p.sandbox.labels, annotations: p.sandbox.annotations, runtimeHandler: "" }));
    const actual = actualPods(sandboxes as never);
    const freshSpec = webSpec();
    freshSpec.containers[0]!.ports = [{ containerPort: 80, hostPort: 8081 }];
    const fresh = buildPod(podInput(freshSpec, "new"), ctx);
    const actions = plan({ pods: [after, fresh], deployments: [], diagnostics: [], frozen: [] }, actual);
    const replace = actions.find((a) => a.action === "replace");
    assert.ok(replace && replace.action === "replace");
    const fields = replace.changes.map((c) => c.field);
    assert.ok(fields.includes("containers[httpd].image"), fields.join(", "));
    assert.ok(fields.some((f) => f.startsWith("containers[httpd].env")), fields.join(", "));
    assert.deepEqual(
      actions.filter((a) => a.action !== "replace").map((a) => `${a.action} ${a.pod}`),
      ["create new", "delete old"],
    );
    const frozen = plan({ pods: [after], deployments: [], diagnostics: [], frozen: [{ kind: "Pod", namespace: "default", name: "old" }] }, actual);
    assert.ok(!frozen.some((a) => a.action === "delete"), "an object of a broken file is not pruned");
  });

  test("a pod with a privileged container gets a privileged sandbox, as kubelet makes it; others keep their hash", () => {
    const plain = buildPod(podInput(webSpec()), ctx);
    assert.equal(plain.sandbox.linux!.securityContext!.privileged, false);
    assert.equal("privilegedSandbox" in plain.effective, false);
    const spec = webSpec();
    spec.initContainers = [{ name: "setup", image: "busybox:1.36", command: ["true"], securityContext: { privileged: true } }];
    const priv = buildPod(podInput(spec), ctx);
    assert.equal(priv.sandbox.linux!.securityContext!.privileged, true);
    assert.equal(priv.effective.privilegedSandbox, true);
  });

  test("host ports: a pod that runs keeps its port, a new one asking for it is refused with both fields named; a freed port admits it", () => {
    const web = buildPod(podInput(webSpec()), ctx);
    const clashSpec = webSpec();
    clashSpec.containers[0]!.ports = [{ containerPort: 9000, hostPort: 8080 }];
    // First in the folder, but web runs: web keeps 127.0.0.1:8080, and 0.0.0.0:8080 meets it.
    const clash = buildPod(podInput(clashSpec, "clash"), ctx);
    const running = actualPods([web].map((p) => ({ id: "sb-web", metadata: p.sandbox.metadata, state: "SANDBOX_READY", createdAt: "0", labels: p.sandbox.labels, annotations: p.sandbox.annotations, runtimeHandler: "" })) as never);
    const actions = plan({ pods: [clash, web], deployments: [], diagnostics: [], frozen: [] }, running);
    assert.equal(actions.length, 1);
    const refusal = actions[0]!;
    assert.equal(refusal.action, "refuse");
    assert.equal(refusal.pod, "clash");
    assert.match(refusal.action === "refuse" ? refusal.reason : "", /hostPort 0\.0\.0\.0:8080\/TCP \(spec\.containers\[0\]\.ports\[0\]\.hostPort\) is taken by pod default\/web of Pod\/default\/web \(127\.0\.0\.1:8080\/TCP\)/);
    assert.match(formatPlan(actions), /^! refuse {2}Pod\/default\/clash {2}pod clash \(hostPort /);
    // Nothing runs: the folder's order decides. Without web, clash is made.
    assert.deepEqual(plan({ pods: [clash, web], deployments: [], diagnostics: [], frozen: [] }, []).map((a) => `${a.action} ${a.pod}`), ["create clash", "refuse web"]);
    assert.deepEqual(plan({ pods: [clash], deployments: [], diagnostics: [], frozen: [] }, []).map((a) => `${a.action} ${a.pod}`), ["create clash"]);
  });

  test("host ports: other addresses, protocols and ports do not meet; a replaced Pod keeps its own; host-network ports count", () => {
    const claim = (ip: string, port = 80, protocol = "TCP") => ({ ip, port, protocol, field: "f" });
    assert.equal(claimsMeet(claim("127.0.0.1"), claim("127.0.0.2")), false);
    assert.equal(claimsMeet(claim("127.0.0.1"), claim("")), true);
    assert.equal(claimsMeet(claim("0.0.0.0"), claim("10.0.0.1")), true);
    assert.equal(claimsMeet(claim(""), claim("", 80, "UDP")), false);
    assert.equal(claimsMeet(claim(""), claim("", 81)), false);
    const web = buildPod(podInput(webSpec()), ctx);
    const edited = webSpec();
    edited.containers[0]!.image = "busybox:1.37";
    const next = buildPod(podInput(edited), ctx);
    assert.deepEqual(refuseByHostPorts([web, next], () => false), new Map(), "two versions of one pod are not a conflict");
    const hostNet = webSpec();
    hostNet.hostNetwork = true;
    hostNet.containers[0]!.ports = [{ containerPort: 8080 }];
    const onHost = buildPod(podInput(hostNet, "on-host"), ctx);
    assert.deepEqual(onHost.hostPorts, [{ protocol: "TCP", port: 8080, ip: "", field: "spec.containers[0].ports[0].containerPort" }]);
    assert.deepEqual([...refuseByHostPorts([web, onHost], () => false).keys()], [onHost.uid]);
    assert.deepEqual([...refuseByHostPorts([web, onHost], (p) => p === onHost).keys()], [web.uid], "what runs holds its ports first");
    assert.deepEqual(refuseByHostPorts([web, onHost], () => true), new Map(), "a pod that runs is never refused (kubelet admits once)");
  });

  test("changedFields compares named lists by name", () => {
    assert.deepEqual(changedFields({ c: [{ name: "a", x: 1 }, { name: "b", x: 1 }] }, { c: [{ name: "b", x: 2 }, { name: "a", x: 1 }] }), [{ field: "c[b].x", from: 1, to: 2 }]);
  });
});

describe("restart back-off", () => {
  test("immediate, then 10 s doubling to 5 min; a long run starts a new streak; asking twice about one exit agrees", () => {
    const b = new RestartBackoff();
    let t = 1_000_000;
    const gaps: number[] = [];
    for (let i = 0; i < 7; i++) {
      const at = b.restartAt("pod/c", t - 1000, t);
      assert.equal(b.restartAt("pod/c", t - 1000, t), at);
      gaps.push((at - t) / 1000);
      t = at + 2000;
    }
    assert.deepEqual(gaps, [0, 10, 20, 40, 80, 160, 300]);
    assert.equal(b.restartAt("pod/c", t, t + 600_000) - (t + 600_000), 0, "ten minutes of running reset the back-off");
  });
});
