import { Inject, Injectable } from '@nestjs/common';
import type { ApiKeyInfo } from '@tokenwire/contracts';
import { LOGGER, TokenwireMetrics, type Logger } from '@tokenwire/core';
import type { Principal } from './api-keys.service';

/** Why an authentication was refused (a metric label, so a short fixed list). */
export type RefusalReason = 'missing' | 'unknown' | 'revoked' | 'operator_on_socket' | 'operator_only';

export interface Refusal {
  reason: RefusalReason;
  transport: 'http' | 'socket';
  /** Client address (the TCP peer; behind a proxy, the proxy). */
  source?: string;
  /** Known for a revoked key (from its tombstone), never for an unknown one. */
  keyId?: string;
  tenantId?: string;
}

/**
 * The audit trail: key creation, revocation, tenant deletion and refused authentications, one
 * structured log line each (`audit: <event>`, key id, tenant, who, source address; never a
 * secret or its hash) and a counter in the api's metrics.
 */
@Injectable()
export class AuditLog {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: TokenwireMetrics,
  ) {}

  keyCreated(key: ApiKeyInfo, by: Principal, source: string | undefined): void {
    this.metrics.keyEvents.inc({ event: 'created' });
    this.logger.info({ audit: 'key_created', keyId: key.id, tenantId: key.tenantId, role: key.role, by: actor(by), source }, 'api key created');
  }

  keyRevoked(key: { id: string; tenantId: string }, by: Principal, source: string | undefined): void {
    this.metrics.keyEvents.inc({ event: 'revoked' });
    this.logger.info({ audit: 'key_revoked', keyId: key.id, tenantId: key.tenantId, by: actor(by), source }, 'api key revoked');
  }

  tenantDeleted(tenantId: string, keyIds: string[], by: Principal, source: string | undefined): void {
    this.metrics.keyEvents.inc({ event: 'tenant_deleted' });
    this.logger.info({ audit: 'tenant_deleted', tenantId, keyIds, by: actor(by), source }, 'tenant deleted');
  }

  refused(refusal: Refusal): void {
    this.metrics.authRefused.inc({ reason: refusal.reason, transport: refusal.transport });
    this.logger.warn({ audit: 'auth_refused', ...refusal }, 'authentication refused');
  }
}

function actor(principal: Principal): string {
  return principal.kind === 'operator' ? 'operator' : `key:${principal.keyId ?? 'none'}`;
}
