import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { ApiError } from '../common/api-error';
import { ApiKeysService, type Principal } from './api-keys.service';
import { AuditLog } from './audit-log.service';
import { IS_PUBLIC } from './public.decorator';
import { DEFAULT_TENANT } from './tenant.decorator';

export type AuthenticatedRequest = Request & { principal?: Principal };

/**
 * `Authorization: Bearer <key>` (or `x-api-key: <key>`, as the Anthropic SDKs send it)
 * on every HTTP route but the public ones.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
    private readonly audit: AuditLog,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true; // sockets authenticate in the handshake
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    if (!this.config.auth.enabled) {
      request.principal = { kind: 'tenant', tenantId: DEFAULT_TENANT, role: 'admin' };
      return true;
    }
    const token = bearerToken(request.header('authorization')) ?? (request.header('x-api-key')?.trim() || undefined);
    if (!token) {
      this.audit.refused({ reason: 'missing', transport: 'http', source: request.ip });
      throw new ApiError(401, 'unauthorized', 'missing API key: send "Authorization: Bearer <key>" or "x-api-key: <key>"');
    }
    const authentication = await this.apiKeys.authenticate(token);
    if (!authentication.ok) {
      const { ok: _ok, ...refusal } = authentication;
      this.audit.refused({ ...refusal, transport: 'http', source: request.ip });
      throw new ApiError(401, 'unauthorized', 'invalid or revoked API key');
    }
    request.principal = authentication.principal;
    return true;
  }
}

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
