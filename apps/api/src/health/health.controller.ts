import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { Redis } from 'ioredis';
import { REDIS_CLIENT } from '@tokenwire/core';

@Controller()
export class HealthController {
  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis) {}

  /** Liveness: the process answers. */
  @Get('healthz')
  health() {
    return { status: 'ok' };
  }

  /** Readiness: Redis answers within a second. */
  @Get('readyz')
  async ready(@Res({ passthrough: true }) response: Response) {
    const started = performance.now();
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 1000 ms')), 1000).unref()),
      ]);
    } catch (error) {
      response.status(503);
      return { status: 'unavailable', redis: { ok: false, error: (error as Error).message } };
    }
    return { status: 'ok', redis: { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 } };
  }
}
