// Which client talks to which registry: the daemon's registry configuration, the insecure list,
// and credentials in order of precedence — the caller's (CRI AuthConfig), the config file's, then
// a docker config.json. Clients without caller credentials are kept per host, so bearer tokens
// are reused across pulls until they expire.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../log";
import type { ImageReference, RegistryAuth, RegistryClient } from "../types";
import { loadDockerConfigAuth } from "./auth";
import { DistributionClient } from "./client";
import { type RegistriesConfig, resolveHostConfig } from "./hosts";

export interface RegistryResolverOptions extends RegistriesConfig {
  /** A docker config.json; default ~/.docker/config.json when it exists. */
  dockerConfig?: string;
  log: Logger;
  userAgent?: string;
}

export class RegistryResolver {
  private readonly shared = new Map<string, DistributionClient>();
  private readonly dockerConfig: string | undefined;

  constructor(private readonly opts: RegistryResolverOptions) {
    const fallback = join(homedir(), ".docker", "config.json");
    this.dockerConfig = opts.dockerConfig ?? (existsSync(fallback) ? fallback : undefined);
  }

  async clientFor(ref: ImageReference, auth?: RegistryAuth): Promise<RegistryClient> {
    const hosts = resolveHostConfig(ref.domain, this.opts);
    const userAgent = this.opts.userAgent ?? "berth/0.1";
    if (auth) return new DistributionClient({ hosts, auth, userAgent });
    const cached = this.shared.get(hosts.host);
    if (cached) return cached;
    const fromFile = !hosts.auth && this.dockerConfig ? await loadDockerConfigAuth(this.dockerConfig, hosts.host) : undefined;
    const client = new DistributionClient({ hosts, auth: fromFile, userAgent });
    this.shared.set(hosts.host, client);
    return client;
  }
}
