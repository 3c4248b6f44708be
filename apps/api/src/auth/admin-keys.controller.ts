import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { createApiKeyRequestSchema, tenantIdSchema, type CreateApiKeyRequest } from '@tokenwire/contracts';
import { ApiError, echo } from '../common/api-error';
import { ZodValidationPipe, parseOrThrow } from '../common/zod-validation.pipe';
import { ApiKeysService, type Principal } from './api-keys.service';
import { CurrentPrincipal } from './tenant.decorator';

/** Key management: the operator for any tenant, a tenant `admin` key for its own tenant. */
@Controller('v1/admin/keys')
export class AdminKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @HttpCode(201)
  create(@CurrentPrincipal() principal: Principal, @Body(new ZodValidationPipe(createApiKeyRequestSchema)) body: CreateApiKeyRequest) {
    const tenantId = this.scope(principal, body.tenantId);
    if (!tenantId) throw new ApiError(400, 'invalid_request', 'tenantId: required with the operator token', 'tenantId');
    return this.apiKeys.create(tenantId, body.role, body.name);
  }

  @Get()
  async list(@CurrentPrincipal() principal: Principal, @Query('tenantId') tenantId?: string) {
    const scoped = this.scope(principal, tenantId === undefined ? undefined : parseOrThrow(tenantIdSchema, tenantId));
    return { object: 'list', data: await this.apiKeys.list(scoped) };
  }

  @Delete(':id')
  async revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    if (!(await this.apiKeys.revoke(id, this.scope(principal, undefined)))) throw new ApiError(404, 'not_found', `no key with id ${echo(id)}`, 'id');
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
