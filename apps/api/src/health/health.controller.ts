import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@tokenwire/contracts';
import { REDIS_CLIENT, REDIS_KEYS } from '@tokenwire/core';
import { DrainService } from '../lifecycle/drain.service';
import { Public } from '../auth/public.decorator';
import { DeploymentStatusService } from './deployment-status.service';

@Public()
@Controller()
export class HealthController {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly drain: DrainService,
    private readonly deployments: DeploymentStatusService,
  ) {}

  /** Liveness: the process answers. */
  @Get('healthz')
  health() {
    return { status: 'ok' };
  }

  /**
   * Readiness: Redis answers within a second. `upstreams` reports the workers'
   * circuit breakers (an open breaker does not make the api unready: other models still work);
   * `deployments` each fleet model's replicas: state, fleet-wide in-flight count, failures.
   */
  @Get('readyz')
  async ready(@Res({ passthrough: true }) response: Response) {
    if (this.drain.isDraining) {
      response.status(503);
      return { status: 'draining' };
    }
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
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    const breakers = await this.redis.hgetall(this.keys.upstreamHealth());
    const upstreams = Object.fromEntries(Object.entries(breakers).map(([model, json]) => [model, JSON.parse(json) as unknown]));
    return { status: 'ok', redis: { ok: true, latencyMs }, upstreams, deployments: await this.deployments.read() };
  }
}
