// A CRI client over @grpc/grpc-js: the one the CLI, the tests and the reconciler's remote mode
// share. Errors come back as BerthError with the server's gRPC code and message.
import { type Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { BerthError, type Code } from "../runtime/errors";
import { loadServices } from "./proto/load";

type AnyClient = Client & Record<string, (...args: unknown[]) => unknown>;

export interface StreamCall<T> extends AsyncIterable<T> {
  cancel(): void;
}

export class CriClient {
  private readonly runtime: AnyClient;
  private readonly image: AnyClient;
  private readonly berth: AnyClient;

  constructor(readonly endpoint: string) {
    const s = loadServices();
    const target = endpoint.startsWith("unix:") ? endpoint : `unix://${endpoint}`;
    const creds = credentials.createInsecure();
    const opts = { "grpc.max_receive_message_length": 16 * 1024 * 1024 };
    this.runtime = new s.RuntimeService(target, creds, opts) as unknown as AnyClient;
    this.image = new s.ImageService(target, creds, opts) as unknown as AnyClient;
    this.berth = new s.Berth(target, creds, opts) as unknown as AnyClient;
  }

  runtimeCall<T = Record<string, unknown>>(method: string, request: object = {}, timeoutMs?: number): Promise<T> {
    return unary<T>(this.runtime, method, request, timeoutMs);
  }

  imageCall<T = Record<string, unknown>>(method: string, request: object = {}, timeoutMs?: number): Promise<T> {
    return unary<T>(this.image, method, request, timeoutMs);
  }

  berthCall<T = Record<string, unknown>>(method: string, request: object = {}, timeoutMs?: number): Promise<T> {
    return unary<T>(this.berth, method, request, timeoutMs);
  }

  berthStream<T = Record<string, unknown>>(method: string, request: object = {}): StreamCall<T> {
    return serverStream<T>(this.berth, method, request);
  }

  runtimeStream<T = Record<string, unknown>>(method: string, request: object = {}): StreamCall<T> {
    return serverStream<T>(this.runtime, method, request);
  }

  close(): void {
    this.runtime.close();
    this.image.close();
    this.berth.close();
  }
}

function toBerthError(err: ServiceError): BerthError {
  return new BerthError(err.code as number as Code, err.details || err.message, { cause: err });
}

function unary<T>(client: AnyClient, method: string, request: object, timeoutMs?: number): Promise<T> {
  const fn = client[method];
  if (typeof fn !== "function") return Promise.reject(new Error(`no such RPC ${method}`));
  return new Promise<T>((resolve, reject) => {
    const options = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
    fn.call(client, request, options, (err: ServiceError | null, res: T) => (err ? reject(toBerthError(err)) : resolve(res)));
  });
}

function serverStream<T>(client: AnyClient, method: string, request: object): StreamCall<T> {
  const fn = client[method];
  if (typeof fn !== "function") throw new Error(`no such RPC ${method}`);
  const call = fn.call(client, request) as NodeJS.ReadableStream & { cancel(): void };
  return {
    cancel: () => call.cancel(),
    async *[Symbol.asyncIterator]() {
      try {
        for await (const msg of call as AsyncIterable<T>) yield msg;
      } catch (err) {
        throw (err as ServiceError).code !== undefined ? toBerthError(err as ServiceError) : err;
      }
    },
  };
}
