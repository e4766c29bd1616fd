// Superseded by ./namespaces.ts; kept only so cli/serve/daemon.ts and test/unit/pod-network.test.ts
// compile until they import ./namespaces (the pod service's integration removes this file).
export { namespacePinner, pinNamespaces, unpinNamespaces } from "./namespaces";
