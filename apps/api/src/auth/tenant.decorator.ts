import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

/** Tenant of requests that carry no credentials (single-tenant deployments). */
export const DEFAULT_TENANT = 'default';

/** The authenticated tenant of this request. */
export const TenantId = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  const request = context.switchToHttp().getRequest<{ tenantId?: string }>();
  return request.tenantId ?? DEFAULT_TENANT;
});
