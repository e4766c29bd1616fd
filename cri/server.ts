// The gRPC server on berth's unix socket: CRI RuntimeService and ImageService plus berth's own
// service. Every handler goes through one wrapper that turns thrown errors into gRPC statuses,
// so a bad request can never crash the daemon. RPCs that are not built yet answer UNIMPLEMENTED.
import { chmod, mkdir, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { dirname } from "node:path";
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
  type UntypedServiceImplementation,
  status,
} from "@grpc/grpc-js";
import { BerthError, Code, codeOf } from "../runtime/errors";
import type { Logger } from "../runtime/log";
import { loadServices, methodNames } from "./proto/load";

export type UnaryHandler = (request: never) => Promise<unknown>;
export type StreamHandler = (request: never, write: (msg: unknown) => void, signal: AbortSignal) => Promise<void>;

export interface ServiceHandlers {
  unary: Record<string, UnaryHandler>;
  stream?: Record<string, StreamHandler>;
}

function toServiceError(err: unknown): Partial<ServiceError> {
  let code = codeOf(err);
  if (code === Code.UNKNOWN) code = Code.INTERNAL;
  const message = err instanceof Error ? err.message : String(err);
  return { code: code as number as status, details: message, message };
}

/**
 * Ends a server stream with an error status. grpc-js sends the status from the stream's final
 * step, which a destroy() skips: the client would wait for a status that never comes. An "error"
 * event is what sets the status and ends the stream.
 */
function failStream(call: ServerWritableStream<unknown, unknown>, err: Partial<ServiceError>): void {
  call.emit("error", err);
}

/** Sees every RPC: `begin` when it arrives, and the function it returns with the final gRPC code. */
export interface RpcObserver {
  begin(service: string, method: string): (code: number) => void;
}

function implement(
  serviceName: string,
  methods: string[],
  handlers: ServiceHandlers,
  log: Logger,
  observer?: RpcObserver,
): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const method of methods) {
    const unary = handlers.unary[method];
    const stream = handlers.stream?.[method];
    if (stream) {
      impl[method] = (call: ServerWritableStream<unknown, unknown>) => {
        const done = observer?.begin(serviceName, method);
        const ac = new AbortController();
        call.on("cancelled", () => ac.abort());
        stream(call.request as never, (msg) => call.write(msg), ac.signal).then(
          () => {
            done?.(ac.signal.aborted ? Code.CANCELLED : Code.OK);
            call.end();
          },
          (err: unknown) => {
            log.debug("rpc failed", { rpc: `${serviceName}/${method}`, error: String(err) });
            const e = toServiceError(err);
            done?.(Number(e.code));
            failStream(call, e);
          },
        );
      };
    } else if (unary) {
      impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: (e: Partial<ServiceError> | null, r?: unknown) => void) => {
        const done = observer?.begin(serviceName, method);
        let pending: Promise<unknown>;
        try {
          pending = unary(call.request as never);
        } catch (err) {
          pending = Promise.reject(err);
        }
        pending.then(
          (res) => {
            done?.(Code.OK);
            callback(null, res);
          },
          (err: unknown) => {
            done?.(Number(toServiceError(err).code));
            if (!(err instanceof BerthError)) log.error("rpc failed unexpectedly", { rpc: `${serviceName}/${method}`, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
            else log.debug("rpc failed", { rpc: `${serviceName}/${method}`, error: err.message });
            callback(toServiceError(err));
          },
        );
      };
    } else {
      const message = `${serviceName}/${method} is not implemented by berth yet`;
      impl[method] = (_call: unknown, callback?: (e: Partial<ServiceError>) => void) => {
        observer?.begin(serviceName, method)(Code.UNIMPLEMENTED);
        const err = { code: status.UNIMPLEMENTED, details: message, message };
        if (callback) callback(err);
        else failStream(_call as ServerWritableStream<unknown, unknown>, err);
      };
    }
  }
  return impl;
}

export interface CriServerOptions {
  socket: string;
  runtime: ServiceHandlers;
  image: ServiceHandlers;
  berth: ServiceHandlers;
  log: Logger;
  observer?: RpcObserver;
}

export interface RunningServer {
  socket: string;
  close(): Promise<void>;
}

/** Refuses to steal the socket of a berth that is still running; removes a stale one. */
async function claimSocket(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
  if (alive) throw new BerthError(Code.ALREADY_EXISTS, `socket ${path} is in use by another running process; stop it or pass --socket`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

export async function startCriServer(opts: CriServerOptions): Promise<RunningServer> {
  const services = loadServices();
  const server = new Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024 });
  server.addService(services.RuntimeService.service, implement("runtime.v1.RuntimeService", methodNames(services.RuntimeService), opts.runtime, opts.log, opts.observer));
  server.addService(services.ImageService.service, implement("runtime.v1.ImageService", methodNames(services.ImageService), opts.image, opts.log, opts.observer));
  server.addService(services.Berth.service, implement("berth.v1.Berth", methodNames(services.Berth), opts.berth, opts.log, opts.observer));
  await claimSocket(opts.socket);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${opts.socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  // kubelet and crictl run as root; group access lets an operator group use the CLI.
  await chmod(opts.socket, 0o660);
  return {
    socket: opts.socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          unlink(opts.socket).catch(() => {});
          resolve();
        });
      }),
  };
}
