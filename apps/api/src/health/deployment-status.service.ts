import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { deploymentStateSchema, type DeploymentMember, type DeploymentStatus, type RedisKeys } from '@tokenwire/contracts';
import { isFleetModel, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';

/** Reads each fleet model's deployments as the workers share them in Redis (for /readyz). */
@Injectable()
export class DeploymentStatusService {
  private readonly fleetModels: string[];

  constructor(
    @Inject(TOKENWIRE_CONFIG) config: TokenwireConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
  ) {
    this.fleetModels = config.models.filter(isFleetModel).map((model) => model.name);
  }

  /** Model → deployment id → status. A back-off whose time has passed reads as `up`. */
  async read(): Promise<Record<string, Record<string, DeploymentStatus>>> {
    const now = Date.now();
    const result: Record<string, Record<string, DeploymentStatus>> = {};
    for (const model of this.fleetModels) {
      const key = (part: Parameters<RedisKeys['fleet']>[1]) => this.keys.fleet(model, part);
      const [members, states, untils, failures, inflight, betweenTurns] = await Promise.all(
        (['members', 'state', 'until', 'failures', 'inflight', 'between-turns-count'] as const).map((part) => this.redis.hgetall(key(part))),
      );
      result[model] = {};
      for (const [id, json] of Object.entries(members!).sort(([a], [b]) => a.localeCompare(b))) {
        const member = JSON.parse(json) as DeploymentMember;
        const until = untils![id] ? Number(untils![id]) : undefined;
        const parsed = deploymentStateSchema.safeParse(states![id] ?? 'up');
        let state = parsed.success ? parsed.data : 'up';
        if ((state === 'busy' || state === 'draining') && (until ?? 0) <= now) state = 'up';
        result[model][id] = {
          state,
          inFlight: Math.max(0, Number(inflight![id] ?? 0)),
          betweenTurns: Math.max(0, Number(betweenTurns![id] ?? 0)),
          failures: Number(failures![id] ?? 0),
          ...(until && until > now ? { until } : {}),
          ...(member.url ? { url: member.url } : {}),
        };
      }
    }
    return result;
  }
}
