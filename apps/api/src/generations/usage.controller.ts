import { Controller, Get } from '@nestjs/common';
import type { UsageReport } from '@tokenwire/contracts';
import { TenantAccounting } from '@tokenwire/core';
import { TenantId } from '../auth/tenant.decorator';

@Controller('v1/usage')
export class UsageController {
  constructor(private readonly accounting: TenantAccounting) {}

  /** The calling tenant's usage per model (upstream-reported tokens, else counted). */
  @Get()
  async usage(@TenantId() tenantId: string): Promise<UsageReport> {
    return { object: 'usage', tenantId, models: await this.accounting.usage(tenantId) };
  }
}
