import { Controller, Delete, Param, Req } from '@nestjs/common';
import type { Request } from 'express';
import { tenantIdSchema } from '@tokenwire/contracts';
import { ApiError, echo } from '../common/api-error';
import { parseOrThrow } from '../common/zod-validation.pipe';
import { ApiKeysService, type Principal } from './api-keys.service';
import { AuditLog } from './audit-log.service';
import { CurrentPrincipal } from './tenant.decorator';

/** Tenant lifecycle, for the operator only. */
@Controller('v1/admin/tenants')
export class AdminTenantsController {
  constructor(
    private readonly apiKeys: ApiKeysService,
    private readonly audit: AuditLog,
  ) {}

  /** Deletes a tenant: every key it has stops working, on HTTP and on open sockets of every api process. */
  @Delete(':id')
  async delete(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Req() request: Request) {
    if (principal.kind !== 'operator') throw new ApiError(403, 'unauthorized', 'deleting a tenant needs the operator token');
    const tenantId = parseOrThrow(tenantIdSchema, id);
    const keyIds = await this.apiKeys.deleteTenant(tenantId);
    if (!keyIds) throw new ApiError(404, 'not_found', `no tenant ${echo(id)}`, 'id');
    this.audit.tenantDeleted(tenantId, keyIds, principal, request.ip);
    return { id: tenantId, deleted: true, revokedKeys: keyIds.length };
  }
}
