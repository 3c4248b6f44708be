import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { getQueueToken } from '@nestjs/bullmq';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Queue } from 'bullmq';
import type { NextFunction, Request, Response } from 'express';
import { GENERATIONS_QUEUE } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { ApiKeysService } from '../auth/api-keys.service';
import { AuditLog } from '../auth/audit-log.service';
import { bearerToken } from '../auth/auth.guard';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * bull-board at /admin/queues. With auth on, only the operator token opens it:
 * `Authorization: Bearer <token>`, or HTTP Basic with the token as password (browsers ask for it).
 */
export function mountQueueDashboard(app: NestExpressApplication): void {
  const config = app.get<TokenwireConfig>(TOKENWIRE_CONFIG);
  const apiKeys = app.get(ApiKeysService);
  const audit = app.get(AuditLog);
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(app.get<Queue>(getQueueToken(GENERATIONS_QUEUE)))], serverAdapter });

  const requireOperator = (request: Request, response: Response, next: NextFunction) => {
    if (!config.auth.enabled) return next();
    const header = request.header('authorization');
    const basic = /^Basic\s+(\S+)$/i.exec(header ?? '')?.[1];
    const token = bearerToken(header) ?? (basic ? Buffer.from(basic, 'base64').toString().split(':').slice(1).join(':') : undefined);
    void (token ? apiKeys.authenticate(token) : Promise.resolve(undefined)).then(
      (authentication) => {
        if (authentication?.ok && authentication.principal.kind === 'operator') return next();
        const refusal = !authentication ? { reason: 'missing' as const } : authentication.ok ? { reason: 'operator_only' as const } : { reason: authentication.reason, keyId: authentication.keyId, tenantId: authentication.tenantId };
        audit.refused({ ...refusal, transport: 'http', source: request.ip });
        response.status(401).set('www-authenticate', 'Basic realm="tokenwire admin"').json({ error: { message: 'the queue dashboard needs the operator token', type: 'authentication_error', param: null, code: 'unauthorized' } });
      },
      (error: unknown) => next(error),
    );
  };
  app.use(QUEUE_DASHBOARD_PATH, requireOperator, serverAdapter.getRouter());
}
