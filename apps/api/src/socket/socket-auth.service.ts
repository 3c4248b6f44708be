import { Inject, Injectable } from '@nestjs/common';
import type { Namespace, Socket } from 'socket.io';
import { CLIENT_EVENTS, type ConnectionErrorEvent, type GatewayError, type RevocationNotice } from '@tokenwire/contracts';
import { LOGGER, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ApiError, echo } from '../common/api-error';
import { ApiKeysService } from '../auth/api-keys.service';
import { AuditLog } from '../auth/audit-log.service';
import { bearerToken } from '../auth/auth.guard';
import { RevocationService } from '../auth/revocation.service';
import { DEFAULT_TENANT } from '../auth/tenant.decorator';

/** What a socket carries once authenticated (never the key itself). */
export interface SocketIdentity {
  tenantId: string;
  /** The key it connected with; absent while auth is off. */
  keyId?: string;
}

const KNOWN_EVENTS = new Set<string>(CLIENT_EVENTS);
const REVOKED: GatewayError = { code: 'unauthorized', status: 401, message: 'the API key of this connection was revoked' };

/**
 * The socket's edge before any handler: the handshake authenticates, every event is checked
 * (an unknown one is answered `unknown_event`; one on a revoked key is refused), and a revocation
 * notice from any api process disconnects the sockets of that key or tenant, with the reason.
 */
@Injectable()
export class SocketAuthService {
  constructor(
    private readonly apiKeys: ApiKeysService,
    private readonly revocations: RevocationService,
    private readonly audit: AuditLog,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  attach(namespace: Namespace): void {
    namespace.use((socket, next) => {
      void this.authenticate(socket).then(
        (identity) => {
          Object.assign(socket.data as object, identity);
          socket.use((packet, nextPacket) => this.checkEvent(socket, packet, nextPacket));
          next();
        },
        (error: unknown) => next(error instanceof ApiError ? Object.assign(new Error(error.message), { data: error.toGatewayError() }) : new Error('internal error')),
      );
    });
    this.revocations.onRevocation((notice) => {
      for (const socket of namespace.sockets.values()) if (revokedBy(socket.data as SocketIdentity, notice)) this.expel(socket, REVOKED);
    });
  }

  /** Tells the client why, then disconnects it (reason `io server disconnect`: it does not reconnect by itself). */
  expel(socket: Socket, error: GatewayError): void {
    const event: ConnectionErrorEvent = { type: 'error', code: error.code, message: error.message, ...(error.status ? { status: error.status } : {}) };
    socket.emit('error', event);
    socket.disconnect();
    const { tenantId, keyId } = socket.data as SocketIdentity;
    this.logger.info({ socketId: socket.id, tenantId, keyId, code: error.code }, `socket disconnected: ${error.message}`);
  }

  private async authenticate(socket: Socket): Promise<SocketIdentity> {
    if (!this.config.auth.enabled) return { tenantId: DEFAULT_TENANT };
    const source = socket.handshake.address;
    const auth = socket.handshake.auth as { token?: unknown };
    const token = typeof auth.token === 'string' ? auth.token : bearerToken(socket.handshake.headers.authorization);
    if (!token) {
      this.audit.refused({ reason: 'missing', transport: 'socket', source });
      throw new ApiError(401, 'unauthorized', 'missing API key: connect with auth: { token }');
    }
    const authentication = await this.apiKeys.authenticate(token);
    if (!authentication.ok) {
      const { ok: _ok, ...refusal } = authentication;
      this.audit.refused({ ...refusal, transport: 'socket', source });
      throw new ApiError(401, 'unauthorized', 'invalid or revoked API key');
    }
    const { principal } = authentication;
    if (principal.kind === 'operator') {
      this.audit.refused({ reason: 'operator_on_socket', transport: 'socket', source });
      throw new ApiError(403, 'unauthorized', 'the operator token manages keys and cannot stream: connect with a tenant API key');
    }
    return { tenantId: principal.tenantId, keyId: principal.keyId };
  }

  /** Packet middleware: runs before the gateway's handler for every event the client sends. */
  private checkEvent(socket: Socket, packet: unknown[], next: (error?: Error) => void): void {
    const last = packet[packet.length - 1];
    const ack = typeof last === 'function' ? (last as (answer: { ok: false; error: GatewayError }) => void) : undefined;
    const event = String(packet[0]);
    if (!KNOWN_EVENTS.has(event)) {
      ack?.({ ok: false, error: { code: 'unknown_event', message: `unknown event ${echo(event)}; the events are ${CLIENT_EVENTS.join(', ')}` } });
      return;
    }
    const { tenantId, keyId } = socket.data as SocketIdentity;
    if (!keyId) return next();
    // One HEXISTS per client event (not per token): a revoked key is refused even before its notice arrives.
    this.apiKeys.isLive(tenantId, keyId).then(
      (live) => {
        if (live) return next();
        ack?.({ ok: false, error: REVOKED });
        this.expel(socket, REVOKED);
      },
      (error: unknown) => {
        this.logger.error({ err: error, socketId: socket.id }, 'cannot check a socket key');
        ack?.({ ok: false, error: { code: 'internal_error', message: 'internal error' } });
      },
    );
  }
}

function revokedBy(identity: SocketIdentity, notice: RevocationNotice): boolean {
  if (!identity.keyId) return false;
  return notice.type === 'key-revoked' ? identity.keyId === notice.keyId && identity.tenantId === notice.tenantId : identity.tenantId === notice.tenantId;
}
