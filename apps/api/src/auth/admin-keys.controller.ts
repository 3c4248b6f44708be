import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { createApiKeyRequestSchema, tenantIdSchema, type CreateApiKeyRequest } from '@tokenwire/contracts';
import { ApiError, echo } from '../common/api-error';
import { ZodValidationPipe, parseOrThrow } from '../common/zod-validation.pipe';
import { ApiKeysService, type Principal } from './api-keys.service';
import { AuditLog } from './audit-log.service';
import { CurrentPrincipal } from './tenant.decorator';

/** Key management: the operator for any tenant, a tenant `admin` key for its own tenant. */
@Controller('v1/admin/keys')
export class AdminKeysController {
  constructor(
    private readonly apiKeys: ApiKeysService,
    private readonly audit: AuditLog,
  ) {}

  @Post()
  @HttpCode(201)
  async create(@CurrentPrincipal() principal: Principal, @Body(new ZodValidationPipe(createApiKeyRequestSchema)) body: CreateApiKeyRequest, @Req() request: Request) {
    const tenantId = this.scope(principal, body.tenantId);
    if (!tenantId) throw new ApiError(400, 'invalid_request', 'tenantId: required with the operator token', 'tenantId');
    const created = await this.apiKeys.create(tenantId, body.role, body.name);
    const { key: _secret, ...info } = created;
    this.audit.keyCreated(info, principal, request.ip);
    return created;
  }

  @Get()
  async list(@CurrentPrincipal() principal: Principal, @Query('tenantId') tenantId?: string) {
    const scoped = this.scope(principal, tenantId === undefined ? undefined : parseOrThrow(tenantIdSchema, tenantId));
    return { object: 'list', data: await this.apiKeys.list(scoped) };
  }

  @Delete(':id')
  async revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Req() request: Request) {
    const revoked = await this.apiKeys.revoke(id, this.scope(principal, undefined));
    if (!revoked) throw new ApiError(404, 'not_found', `no key with id ${echo(id)}`, 'id');
    this.audit.keyRevoked(revoked, principal, request.ip);
    return { id, revoked: true };
  }

  /** The tenant a call may act on: any (operator) or its own (tenant admin). */
  private scope(principal: Principal, requested: string | undefined): string | undefined {
    if (principal.kind === 'operator') return requested;
    if (principal.role !== 'admin') throw new ApiError(403, 'unauthorized', 'managing keys needs an admin key');
    if (requested && requested !== principal.tenantId) throw new ApiError(404, 'not_found', `no tenant ${echo(requested)}`, 'tenantId');
    return principal.tenantId;
  }
}
