// A real registry for the tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
// filesystem storage in a temp dir, optionally behind htpasswd basic auth, token auth (with a
// token issuer of our own that signs RS256 JWTs carrying an x5c chain the registry trusts), or
// TLS. stop() kills it by PID and removes every file it made.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createPrivateKey, type KeyObject, randomBytes, sign, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, get as httpGet, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import bcrypt from "bcryptjs";

const run = promisify(execFile);

export interface Credentials {
  username: string;
  password: string;
}

export interface TokenAuthOptions extends Credentials {
  /** An identity token the issuer accepts as an OAuth2 refresh token (POST grant_type=refresh_token). */
  identityToken?: string;
  /** Lifetime of the tokens it issues (expires_in). Default 300. */
  ttlSeconds?: number;
}

export interface RegistryOptions {
  /** Basic auth with one user. */
  htpasswd?: Credentials;
  /** Token auth: credentials the token issuer accepts. `true` means user "berth" / password "s3cret". */
  token?: TokenAuthOptions | true;
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (its PEM is `caFile`). */
  tls?: boolean;
}

export interface TokenRequestLog {
  method: string;
  scopes: string[];
  /** Who asked: the basic-auth user, "identity-token", or "" when anonymous. */
  account: string;
  granted: boolean;
}

export interface TokenIssuer {
  url: string;
  realm: string;
  service: string;
  issuer: string;
  credentials: Credentials;
  identityToken?: string;
  /** Every token request it answered, in order. */
  requests: TokenRequestLog[];
}

export interface TestRegistry {
  /** "127.0.0.1:PORT", what goes in an image reference. */
  host: string;
  /** "http://127.0.0.1:PORT" (https with `tls`). */
  url: string;
  /** The registry's certificate when serving TLS. */
  caFile?: string;
  tokenIssuer?: TokenIssuer;
  stop(): Promise<void>;
}

export const TOKEN_SERVICE = "berth-test-registry";
export const TOKEN_ISSUER = "berth-test-issuer";

/** A port that was free a moment ago: the caller retries if someone takes it first. */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", resolve);
  });
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function selfSignedCert(dir: string, name: string, subject: string, san?: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", subject];
  if (san) args.push("-addext", `subjectAltName=${san}`);
  await run("openssl", args);
  return { cert, key };
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

function signJwt(key: KeyObject, certDer: Buffer, claims: Record<string, unknown>): string {
  // distribution 2.8 takes the signing key from the x5c chain and checks it against rootcertbundle.
  const header = { typ: "JWT", alg: "RS256", x5c: [certDer.toString("base64")] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign("sha256", Buffer.from(input), key))}`;
}

function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  // "repository:name/with/slashes:pull,push" — the name may itself hold a colon (a port), so split from both ends.
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(",").filter(Boolean) };
}

async function readRequestBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function startTokenIssuer(dir: string, opts: TokenAuthOptions): Promise<{ issuer: TokenIssuer; certFile: string; server: Server }> {
  const { cert, key } = await selfSignedCert(dir, "token-signer", "/CN=berth-test-token-issuer");
  const privateKey = createPrivateKey(await readFile(key));
  const certDer = new X509Certificate(await readFile(cert)).raw;
  const ttl = opts.ttlSeconds ?? 300;
  const requests: TokenRequestLog[] = [];

  const deny = (res: ServerResponse, message: string) => {
    res.writeHead(401, { "content-type": "application/json" });
    res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message }] }));
  };
  const server = createServer((req, res) => {
    (async () => {
      const url = new URL(req.url ?? "/", "http://issuer");
      if (url.pathname !== "/token") {
        res.writeHead(404).end();
        return;
      }
      let scopes = url.searchParams.getAll("scope");
      let account = "";
      if (req.method === "POST") {
        const form = new URLSearchParams(await readRequestBody(req));
        scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
        if (form.get("grant_type") !== "refresh_token" || !opts.identityToken || form.get("refresh_token") !== opts.identityToken) {
          requests.push({ method: "POST", scopes, account: "identity-token", granted: false });
          return deny(res, "invalid refresh token");
        }
        account = "identity-token";
      } else {
        const auth = req.headers.authorization;
        if (auth) {
          const decoded = auth.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString("utf8") : "";
          const colon = decoded.indexOf(":");
          const user = decoded.slice(0, Math.max(0, colon));
          if (colon < 0 || user !== opts.username || decoded.slice(colon + 1) !== opts.password) {
            requests.push({ method: "GET", scopes, account: user, granted: false });
            return deny(res, "incorrect username or password");
          }
          account = user;
        }
      }
      // Anonymous callers get a token that grants nothing, as Docker Hub does for a private repository.
      const access = account ? scopes.map(parseScope).filter((s) => s !== undefined) : [];
      requests.push({ method: req.method ?? "GET", scopes, account, granted: access.length > 0 });
      const now = Math.floor(Date.now() / 1000);
      const token = signJwt(privateKey, certDer, {
        iss: TOKEN_ISSUER,
        sub: account,
        aud: TOKEN_SERVICE,
        exp: now + ttl,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString("hex"),
        access,
      });
      res.writeHead(200, { "content-type": "application/json" });
      const body: Record<string, unknown> = { token, access_token: token, expires_in: ttl, issued_at: new Date(now * 1000).toISOString() };
      if (req.method === "POST") body.refresh_token = opts.identityToken;
      res.end(JSON.stringify(body));
    })().catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  const issuer: TokenIssuer = {
    url,
    realm: `${url}/token`,
    service: TOKEN_SERVICE,
    issuer: TOKEN_ISSUER,
    credentials: { username: opts.username, password: opts.password },
    requests,
  };
  if (opts.identityToken) issuer.identityToken = opts.identityToken;
  return { issuer, certFile: cert, server };
}

function probe(url: string, ca: Buffer | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const done = (res: IncomingMessage) => {
      res.resume();
      resolve(res.statusCode);
    };
    const req = url.startsWith("https:") ? httpsGet(url, { ca, agent: false }, done) : httpGet(url, { agent: false }, done);
    req.on("error", () => resolve(undefined));
    req.setTimeout(2000, () => req.destroy());
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function killChild(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  process.kill(child.pid, "SIGTERM");
  if (await waitExit(child, 5000)) return;
  process.kill(child.pid, "SIGKILL");
  await waitExit(child, 5000);
}

/** Starts docker-registry on 127.0.0.1 with a free port; resolves once GET /v2/ answers. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "berth-registry-"));
  let child: ChildProcess | undefined;
  let issuerServer: Server | undefined;
  const stop = async () => {
    await killChild(child);
    if (issuerServer) {
      issuerServer.closeAllConnections();
      await new Promise<void>((resolve) => issuerServer!.close(() => resolve()));
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: "error", accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      health: { storagedriver: { enabled: false } },
    };
    if (opts.htpasswd) {
      await writeFile(join(dir, "htpasswd"), `${opts.htpasswd.username}:${bcrypt.hashSync(opts.htpasswd.password, 4)}\n`);
      config.auth = { htpasswd: { realm: "berth-test", path: join(dir, "htpasswd") } };
    }
    let tokenIssuer: TokenIssuer | undefined;
    if (opts.token) {
      const tokenOpts = opts.token === true ? { username: "berth", password: "s3cret" } : opts.token;
      const started = await startTokenIssuer(dir, tokenOpts);
      issuerServer = started.server;
      tokenIssuer = started.issuer;
      config.auth = { token: { realm: tokenIssuer.realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, rootcertbundle: started.certFile } };
    }
    let caFile: string | undefined;
    let http: Record<string, unknown> = {};
    if (opts.tls) {
      const { cert, key } = await selfSignedCert(dir, "registry", "/CN=127.0.0.1", "IP:127.0.0.1");
      caFile = cert;
      http = { tls: { certificate: cert, key } };
    }
    const ca = caFile ? await readFile(caFile) : undefined;
    const scheme = opts.tls ? "https" : "http";

    for (let tries = 1; ; tries++) {
      const host = `127.0.0.1:${await freePort()}`;
      // JSON is YAML.
      await writeFile(join(dir, "config.yml"), JSON.stringify({ ...config, http: { ...http, addr: host } }));
      let output = "";
      child = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      const url = `${scheme}://${host}`;
      let ready = false;
      for (let i = 0; i < 500 && !ready; i++) {
        if (child.exitCode !== null) break;
        const status = await probe(`${url}/v2/`, ca);
        ready = status === 200 || status === 401;
        if (!ready) await sleep(20);
      }
      if (ready) {
        const registry: TestRegistry = { host, url, stop };
        if (caFile) registry.caFile = caFile;
        if (tokenIssuer) registry.tokenIssuer = tokenIssuer;
        return registry;
      }
      await killChild(child);
      if (/address already in use/i.test(output) && tries < 5) continue;
      throw new Error(`docker-registry did not answer on ${url}: ${output.trim() || "(no output)"}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
