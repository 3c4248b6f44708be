import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiError } from '../common/api-error';
import type { Principal } from './api-keys.service';

/** Tenant of every request while auth is off (a single-tenant or local setup). */
export const DEFAULT_TENANT = 'default';

/** The calling tenant. The operator token has none: it may only manage keys. */
export const TenantId = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  const principal = context.switchToHttp().getRequest<{ principal?: Principal }>().principal;
  if (principal?.kind !== 'tenant') throw new ApiError(403, 'unauthorized', 'the operator token manages keys; use a tenant API key for this route');
  return principal.tenantId;
});

/** The authenticated principal (set by AuthGuard). */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Principal => context.switchToHttp().getRequest<{ principal: Principal }>().principal,
);
