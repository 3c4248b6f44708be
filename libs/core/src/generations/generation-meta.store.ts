import type { Redis } from 'ioredis';
import type { GenerationStatus, RedisKeys } from '@tokenwire/contracts';

export interface GenerationMeta {
  id: string;
  tenantId: string;
  model: string;
  status: GenerationStatus;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** What the room shows for a conversation member's prompt: its display name and the prompt's text. */
  author?: string;
  prompt?: string;
}

/** Status and ownership of a generation, a Redis hash beside its event log. */
export class GenerationMetaStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  /** Records a new generation. `status` is set only if absent: a fast worker may already have marked it running. */
  async create(meta: Omit<GenerationMeta, 'status'>): Promise<void> {
    const key = this.keys.meta(meta.id);
    await this.redis
      .multi()
      .hset(key, {
        id: meta.id,
        tenantId: meta.tenantId,
        model: meta.model,
        createdAt: meta.createdAt,
        ...(meta.author !== undefined && { author: meta.author }),
        ...(meta.prompt !== undefined && { prompt: meta.prompt }),
      })
      .hsetnx(key, 'status', 'queued')
      .expire(key, this.ttlSeconds)
      .exec();
  }

  async get(id: string): Promise<GenerationMeta | undefined> {
    const hash = await this.redis.hgetall(this.keys.meta(id));
    if (!hash.id || !hash.tenantId) return undefined; // a worker's write can precede the api's
    return {
      id: hash.id,
      tenantId: hash.tenantId!,
      model: hash.model!,
      status: hash.status as GenerationStatus,
      createdAt: Number(hash.createdAt),
      startedAt: hash.startedAt ? Number(hash.startedAt) : undefined,
      finishedAt: hash.finishedAt ? Number(hash.finishedAt) : undefined,
      author: hash.author,
      prompt: hash.prompt,
    };
  }
}
