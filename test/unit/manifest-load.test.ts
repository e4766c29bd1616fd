import assert from "node:assert/strict";
import { mkdir, mkdtemp, realpath, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { Ajv } from "ajv";
import type { V1ConfigMap, V1Pod } from "@kubernetes/client-node";
import { loadManifests, MAX_MANIFEST_FILE_BYTES } from "../../reconciler/load/read-folder";
import type { Diagnostic, ManifestSet, SourcePosition } from "../../reconciler/types";
import schema from "../../schemas/manifests.schema.json";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "berth-manifests-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function put(dir: string, rel: string, text: string): Promise<void> {
  await mkdir(dirname(join(dir, rel)), { recursive: true });
  await writeFile(join(dir, rel), text);
}

const pod = (name: string, extra = "") => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n    - name: app\n      image: nginx\n${extra}`;

const names = (set: ManifestSet) => set.objects.map((o) => `${o.key.kind}/${o.key.namespace}/${o.key.name}`);
const at = (d: SourcePosition) => `${d.file}:${d.line}:${d.column}`;
const only = (set: ManifestSet): Diagnostic => {
  assert.equal(set.diagnostics.length, 1, JSON.stringify(set.diagnostics, null, 1));
  return set.diagnostics[0];
};

test("a multi-document file yields each object with the line its document starts on", async () => {
  await withDir(async (dir) => {
    await put(dir, "app.yaml", `# comment-only document\n---\n${pod("web")}---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\n  namespace: web\ndata:\n  mode: "0644"\n  port: "80"\n...\n`);
    const set = await loadManifests(dir);
    assert.deepEqual(set.diagnostics, []);
    assert.deepEqual(set.brokenFiles, []);
    assert.deepEqual(names(set), ["Pod/default/web", "ConfigMap/web/conf"]);
    assert.deepEqual(set.objects[0].source, { file: "app.yaml", line: 3, column: 1 });
    assert.deepEqual(set.objects[1].source, { file: "app.yaml", line: 13, column: 1 });
    assert.equal((set.objects[0].body as V1Pod).spec?.containers[0].image, "nginx");
    assert.deepEqual((set.objects[1].body as V1ConfigMap).data, { mode: "0644", port: "80" });
    assert.equal(set.revision, undefined);
    assert.equal(set.resolvedRoot, await realpath(dir));
  });
});

test("scalars read as kubectl reads them, and status is accepted but dropped", async () => {
  await withDir(async (dir) => {
    const volumes = "  volumes:\n    - name: conf\n      configMap: {name: conf, defaultMode: 0644}\nstatus:\n  phase: Running\n";
    await put(dir, "p.yaml", pod("p", volumes));
    const set = await loadManifests(dir);
    assert.deepEqual(set.diagnostics, []);
    const body = set.objects[0].body as V1Pod;
    assert.equal(body.spec?.volumes?.[0].configMap?.defaultMode, 0o644, "0644 is octal, as in Kubernetes");
    assert.equal("status" in body, false);
  });
});

test("a YAML syntax error names the file, line and column, without a source snippet", async () => {
  await withDir(async (dir) => {
    await put(dir, "bad.yaml", "apiVersion: v1\nkind: Pod\n  metadata: {}\n");
    const set = await loadManifests(dir);
    const d = only(set);
    assert.equal(at(d), "bad.yaml:3:11");
    assert.equal(d.field, "");
    assert.match(d.message, /^invalid YAML: bad indentation/);
    assert.doesNotMatch(d.message, /\n/);
    assert.deepEqual(set.brokenFiles, ["bad.yaml"]);
  });
});

test("schema errors give the dotted field and the position of the offending node", async () => {
  await withDir(async (dir) => {
    const text = [
      "apiVersion: v1",
      "kind: Pod",
      "metadata: {name: web}",
      "spec:",
      "  nodeSelector:",
      "    disk: ssd",
      "  containers:",
      "    - name: web",
      "      image: nginx",
      "      ports:",
      "        - containerPort: 80",
      '        - containerPort: "eighty"',
      "    - name: sidecar",
      "      args: [run]",
      "",
    ].join("\n");
    await put(dir, "web.yaml", text);
    const set = await loadManifests(dir);
    const got = set.diagnostics.map((d) => `${at(d)} ${d.field}: ${d.message}`);
    assert.deepEqual(got, [
      "web.yaml:5:3 spec.nodeSelector: is not supported by berth",
      "web.yaml:12:26 spec.containers[0].ports[1].containerPort: must be a port number from 1 to 65535",
      "web.yaml:13:7 spec.containers[1].image: is required",
    ]);
    assert.deepEqual(set.diagnostics[0].object, { kind: "Pod", namespace: "default", name: "web" });
    assert.deepEqual(set.objects, []);
    assert.deepEqual(set.brokenFiles, ["web.yaml"]);
  });
});

test("value errors are worded for people: empty image, bad quantity, probe without a handler, typo", async () => {
  await withDir(async (dir) => {
    const extra = ["      resources: {limits: {cpu: 2 cores}}", "      livenessProbe:", "        periodSeconds: 5", "      imagePullPolicy: Sometimes", "      volumeMount: []", ""].join("\n");
    await put(dir, "p.yaml", pod("p", extra).replace("image: nginx", 'image: ""'));
    const got = (await loadManifests(dir)).diagnostics.map((d) => `${d.line}:${d.column} ${d.field}: ${d.message}`);
    assert.deepEqual(got, [
      "8:14 spec.containers[0].image: must be a non-empty string",
      "9:33 spec.containers[0].resources.limits.cpu: must be a Kubernetes quantity such as 100m, 0.5, 128Mi or 1G",
      "10:7 spec.containers[0].livenessProbe: must set exactly one of exec, httpGet, tcpSocket",
      "12:24 spec.containers[0].imagePullPolicy: must be one of Always, IfNotPresent, Never",
      "13:7 spec.containers[0].volumeMount: is not supported by berth (did you mean volumeMounts?)",
    ]);
  });
});

test("a broken file does not stop the other files' objects", async () => {
  await withDir(async (dir) => {
    await put(dir, "a.yaml", `${pod("a")}---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: []}\n`);
    await put(dir, "sub/c.yml", pod("c"));
    await put(dir, "d.yaml", "key: [unclosed\n");
    const set = await loadManifests(dir);
    assert.deepEqual(names(set), ["Pod/default/c"], "nothing from a.yaml, though its first document is valid");
    assert.deepEqual(set.brokenFiles, ["a.yaml", "d.yaml"]);
    assert.deepEqual(
      set.diagnostics.map((d) => `${at(d)} ${d.field}`),
      ["a.yaml:13:20 spec.containers", "d.yaml:2:1 "],
    );
  });
});

test("a duplicate keeps the older file's object and is reported at both places", async () => {
  await withDir(async (dir) => {
    const deploy = (image: string) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: ${image}}]}\n`;
    await put(dir, "a-new.yaml", `${pod("x")}---\n${deploy("new")}`);
    await put(dir, "b-old.yaml", deploy("old"));
    await utimes(join(dir, "b-old.yaml"), new Date("2020-01-01"), new Date("2020-01-01"));
    const set = await loadManifests(dir);
    assert.deepEqual(names(set), ["Pod/default/x", "Deployment/default/web"]);
    assert.equal(set.objects[1].source.file, "b-old.yaml");
    assert.deepEqual(set.brokenFiles, [], "a dropped duplicate does not make its file broken");
    assert.deepEqual(
      set.diagnostics.map((d) => `${at(d)} ${d.message}`),
      [
        "a-new.yaml:10:1 Deployment/default/web is also declared at b-old.yaml:1:1; keeping the older one at b-old.yaml:1:1",
        "b-old.yaml:1:1 Deployment/default/web is also declared at a-new.yaml:10:1; keeping the older one at b-old.yaml:1:1",
      ],
    );
    assert.deepEqual(set.diagnostics[0].object, { kind: "Deployment", namespace: "default", name: "web" });
  });
});

test("duplicates with the same mtime keep the first by path, then the first in the file", async () => {
  await withDir(async (dir) => {
    await put(dir, "b.yaml", `${pod("p")}---\n${pod("p")}`);
    await put(dir, "a.yaml", pod("q"));
    await put(dir, "c.yaml", pod("q"));
    const when = new Date("2024-05-01");
    for (const f of ["a.yaml", "b.yaml", "c.yaml"]) await utimes(join(dir, f), when, when);
    const set = await loadManifests(dir);
    assert.deepEqual(
      set.objects.map((o) => at(o.source)),
      ["a.yaml:1:1", "b.yaml:1:1"],
    );
    assert.equal(set.diagnostics.length, 4);
    assert.match(set.diagnostics[1].message, /^Pod\/default\/p is also declared at b\.yaml:10:1; keeping the first one at b\.yaml:1:1$/);
  });
});

test("dot-files, dot-directories and editor leftovers are not read", async () => {
  await withDir(async (dir) => {
    await put(dir, "keep/app.yaml", pod("kept"));
    const junk = "this: [is not yaml\n";
    for (const f of [".hidden.yaml", ".git/x.yaml", ".worktrees/0123abc/app.yaml", "app.yaml.swp", "app.yaml.swx", "app.yaml~", "#app.yaml#", ".#app.yaml", "notes.txt", "keep/.sub/x.yml"]) await put(dir, f, junk);
    const set = await loadManifests(dir);
    assert.deepEqual(set.diagnostics, []);
    assert.deepEqual(names(set), ["Pod/default/kept"]);
    assert.equal(set.objects[0].source.file, "keep/app.yaml");
  });
});

test("a root symlinked into .worktrees/<hash> reads that tree and reports its revision", async () => {
  await withDir(async (dir) => {
    const hash = "0123456789abcdef0123456789abcdef01234567";
    await put(dir, `.worktrees/${hash}/apps/web.yaml`, pod("web"));
    await symlink(`.worktrees/${hash}`, join(dir, "current"));
    const set = await loadManifests(join(dir, "current"));
    assert.equal(set.root, join(dir, "current"));
    assert.equal(set.resolvedRoot, join(await realpath(dir), ".worktrees", hash));
    assert.equal(set.revision, hash);
    assert.deepEqual(set.objects[0].source, { file: "apps/web.yaml", line: 1, column: 1 });
  });
});

test("symlinks inside the tree: no directory is entered, no file outside is read", async () => {
  await withDir(async (dir) => {
    const tree = join(dir, "tree");
    await put(dir, "outside/secret.yaml", pod("secret"));
    await put(tree, "real/a.yaml", pod("a"));
    await symlink(join(dir, "outside"), join(tree, "linked-dir"));
    await symlink(join(dir, "outside/secret.yaml"), join(tree, "leak.yaml"));
    await symlink("real/a.yaml", join(tree, "alias.yaml"));
    const set = await loadManifests(tree);
    assert.deepEqual(set.brokenFiles, ["leak.yaml"]);
    assert.match(only({ ...set, diagnostics: set.diagnostics.filter((d) => d.file === "leak.yaml") }).message, /outside the manifests folder/);
    // alias.yaml points inside the tree, so it is read: the same Pod twice is a duplicate.
    assert.deepEqual(names(set), ["Pod/default/a"]);
    assert.ok(set.diagnostics.some((d) => d.file === "alias.yaml" && /also declared at real\/a\.yaml/.test(d.message)));
  });
});

test("a Deployment whose selector does not match its template's labels is refused", async () => {
  await withDir(async (dir) => {
    const text = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: web, image: nginx}]}\n`;
    await put(dir, "d.yaml", text);
    const d = only(await loadManifests(dir));
    assert.equal(`${at(d)} ${d.field}`, "d.yaml:6:5 spec.selector.matchLabels");
    assert.match(d.message, /selects app=web, which spec\.template\.metadata\.labels does not have/);
  });
});

test("container names are unique across init and regular containers; mounts name declared volumes", async () => {
  await withDir(async (dir) => {
    const extra = "      volumeMounts: [{name: data, mountPath: /data}]\n  initContainers:\n    - {name: app, image: busybox}\n";
    await put(dir, "p.yaml", pod("p", extra));
    const got = (await loadManifests(dir)).diagnostics.map((d) => `${d.line}:${d.column} ${d.field}: ${d.message}`);
    assert.deepEqual(got, [
      "7:13 spec.containers[0].name: duplicate container name app (also spec.initContainers[0].name)",
      "9:29 spec.containers[0].volumeMounts[0].name: no volume named data in spec.volumes",
    ]);
  });
});

test("an unknown kind, or a known kind under another apiVersion, is refused clearly", async () => {
  await withDir(async (dir) => {
    await put(dir, "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\napiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\n");
    const set = await loadManifests(dir);
    assert.deepEqual(
      set.diagnostics.map((d) => `${at(d)} ${d.field}: ${d.message}`),
      [
        "svc.yaml:2:7 kind: kind Service (apiVersion v1) is not supported: berth reads v1 Pod, v1 ConfigMap, apps/v1 Deployment",
        "svc.yaml:6:7 kind: kind Deployment (apiVersion extensions/v1beta1) is not supported: berth reads v1 Pod, v1 ConfigMap, apps/v1 Deployment",
      ],
    );
  });
});

test("oversized files, alias bombs and missing folders fail cleanly", async () => {
  await withDir(async (dir) => {
    await put(dir, "big.yaml", `# ${"x".repeat(MAX_MANIFEST_FILE_BYTES)}\n`);
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 8; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(", ")}]`);
    await put(dir, "bomb.yaml", `${bomb.join("\n")}\n`);
    const set = await loadManifests(dir);
    assert.deepEqual(set.brokenFiles, ["big.yaml", "bomb.yaml"]);
    assert.match(set.diagnostics[0].message, /at most 4194304 bytes/);
    assert.match(set.diagnostics[1].message, /aliases .* expand to more than/);
    await assert.rejects(loadManifests(join(dir, "nope")), { message: `manifests folder ${join(dir, "nope")} does not exist` });
  });
});

test("the schema's root dispatches on apiVersion and kind, for editors that use it directly", () => {
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, keywords: ["mustBe"] });
  const validate = ajv.compile(schema);
  assert.equal(validate({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "b" } }), true);
  assert.equal(validate({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: 1 } }), false);
});
