// Errors that cross berth's layers. Each carries the gRPC status code the CRI server answers
// with, so a runtime failure maps to the right code without the runtime depending on gRPC.

/** gRPC status codes (google.rpc.Code), numbered as on the wire. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

export class BerthError extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class InvalidArgumentError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.INVALID_ARGUMENT, message, options);
  }
}
export class DeadlineExceededError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.DEADLINE_EXCEEDED, message, options);
  }
}
export class NotFoundError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.NOT_FOUND, message, options);
  }
}
export class AlreadyExistsError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.ALREADY_EXISTS, message, options);
  }
}
export class FailedPreconditionError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.FAILED_PRECONDITION, message, options);
  }
}
export class PermissionDeniedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.PERMISSION_DENIED, message, options);
  }
}
export class UnauthenticatedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.UNAUTHENTICATED, message, options);
  }
}
export class ResourceExhaustedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.RESOURCE_EXHAUSTED, message, options);
  }
}
export class UnavailableError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.UNAVAILABLE, message, options);
  }
}
/** Content that does not match its digest, or a layer that tries to leave its root. */
export class DataLossError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.DATA_LOSS, message, options);
  }
}
export class UnimplementedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.UNIMPLEMENTED, message, options);
  }
}
export class InternalError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.INTERNAL, message, options);
  }
}

/**
 * The daemon itself is no longer in a state to go on (a thread left in a pod's namespaces): it
 * must exit so that its supervisor starts a clean one. Containers run on under conmon.
 */
export class UnsafeStateError extends InternalError {}

/** The code to answer with for any thrown value: ours keep theirs, disk-full is RESOURCE_EXHAUSTED. */
export function codeOf(err: unknown): Code {
  if (err instanceof BerthError) return err.code;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno === "ENOSPC" || errno === "EDQUOT") return Code.RESOURCE_EXHAUSTED;
  return Code.UNKNOWN;
}
