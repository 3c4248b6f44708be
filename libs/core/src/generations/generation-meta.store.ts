import type { Redis } from 'ioredis';
import type { GenerationStatus, RedisKeys } from '@tokenwire/contracts';
import { CREATE_META_LUA } from '../events/event-log.scripts';

interface MetaCommands {
  twCreateMeta(meta: string, status: string, ...fieldsAndValues: Array<string | number>): Promise<number>;
}

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

/**
 * Status and ownership of a generation, a Redis hash beside its event log. It has no TTL until the
 * generation ends (CREATE_META_LUA), so no wait in the queue or for a model slot can expire it.
 */
export class GenerationMetaStore {
  private readonly redis: Redis & MetaCommands;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {
    if (!('twCreateMeta' in redis)) redis.defineCommand('twCreateMeta', { numberOfKeys: 1, lua: CREATE_META_LUA });
    this.redis = redis as Redis & MetaCommands;
  }

  /** Records a new generation. `status` is set only if absent: a fast worker may already have marked it running. */
  async create(meta: Omit<GenerationMeta, 'status'>): Promise<void> {
    const fields: Array<string | number> = ['id', meta.id, 'tenantId', meta.tenantId, 'model', meta.model, 'createdAt', meta.createdAt];
    if (meta.author !== undefined) fields.push('author', meta.author);
    if (meta.prompt !== undefined) fields.push('prompt', meta.prompt);
    await this.redis.twCreateMeta(this.keys.meta(meta.id), 'queued', ...fields);
  }

  /** Gives the meta of a generation that was never queued (admission failed after the meta write) a TTL, so it cannot stay. */
  async abandon(id: string): Promise<void> {
    await this.redis.expire(this.keys.meta(id), this.ttlSeconds);
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
