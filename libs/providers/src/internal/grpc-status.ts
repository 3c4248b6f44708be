import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { UpstreamClosedError, UpstreamConnectError, UpstreamHttpError, UpstreamProtocolError, type UpstreamError } from '../errors';

/**
 * Each gRPC status as the HTTP status gRPC itself maps it to (google.rpc.Code), and whether
 * a new attempt may succeed. UNAVAILABLE, CANCELLED and INTERNAL are handled apart (below).
 */
export const GRPC_STATUS_MAP: Readonly<Partial<Record<GrpcStatus, { http: number; retryable: boolean }>>> = {
  [GrpcStatus.INVALID_ARGUMENT]: { http: 400, retryable: false },
  [GrpcStatus.FAILED_PRECONDITION]: { http: 400, retryable: false },
  [GrpcStatus.OUT_OF_RANGE]: { http: 400, retryable: false },
  [GrpcStatus.UNAUTHENTICATED]: { http: 401, retryable: false },
  [GrpcStatus.PERMISSION_DENIED]: { http: 403, retryable: false },
  [GrpcStatus.NOT_FOUND]: { http: 404, retryable: false },
  [GrpcStatus.ALREADY_EXISTS]: { http: 409, retryable: false },
  [GrpcStatus.ABORTED]: { http: 409, retryable: true },
  [GrpcStatus.RESOURCE_EXHAUSTED]: { http: 429, retryable: true },
  [GrpcStatus.UNKNOWN]: { http: 500, retryable: true },
  [GrpcStatus.DATA_LOSS]: { http: 500, retryable: false },
  [GrpcStatus.UNIMPLEMENTED]: { http: 501, retryable: false },
  [GrpcStatus.DEADLINE_EXCEEDED]: { http: 504, retryable: true },
};

/**
 * The typed error for a gRPC call that ended with a non-OK status. `afterOutput`: the upstream
 * had sent tokens, so a broken connection is `upstream_closed` (a retry cannot continue a reply),
 * not "cannot reach".
 */
export function upstreamErrorForGrpcStatus(error: ServiceError, upstream: string, afterOutput: boolean): UpstreamError {
  const name = GrpcStatus[error.code] ?? String(error.code);
  const details = `${upstream}: ${name}: ${error.details}`;
  switch (error.code) {
    case GrpcStatus.UNAVAILABLE:
      return afterOutput
        ? new UpstreamClosedError(`the gRPC stream broke after the first tokens (${details})`, { afterOutput, cause: error })
        : new UpstreamConnectError(`cannot reach gRPC upstream ${details}`, { cause: error });
    case GrpcStatus.CANCELLED:
      return new UpstreamClosedError(`the gRPC call was cancelled by the server (${details})`, { afterOutput, cause: error });
    case GrpcStatus.INTERNAL:
      // Also what grpc-js reports for a response message it cannot decode.
      if (/pars(e|ing)|deserializ|decod/i.test(error.details)) return new UpstreamProtocolError(`gRPC upstream sent a malformed message (${details})`, { cause: error });
      return new UpstreamHttpError(500, error.details, undefined, { retryable: !afterOutput, upstream: { code: name, message: details }, cause: error });
    default: {
      const mapped = GRPC_STATUS_MAP[error.code] ?? { http: 502, retryable: false };
      return new UpstreamHttpError(mapped.http, error.details, undefined, { retryable: mapped.retryable && !afterOutput, upstream: { code: name, message: details }, cause: error });
    }
  }
}
