import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyInfo, ApiKeyRole, RedisKeys } from '@tokenwire/contracts';
import { REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';

/** Who is calling: a tenant's key, or the operator (no tenant, manages keys only). */
export type Principal = { kind: 'tenant'; tenantId: string; role: ApiKeyRole; keyId?: string } | { kind: 'operator' };

const KEY_PREFIX = 'tw_';

/** API keys in Redis, stored only as SHA-256 hashes; the secret is shown once, at creation. */
@Injectable()
export class ApiKeysService {
  private readonly operatorToken?: Buffer;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) config: TokenwireConfig,
  ) {
    this.operatorToken = config.auth.adminToken ? sha256(config.auth.adminToken) : undefined;
  }

  async create(tenantId: string, role: ApiKeyRole, name?: string): Promise<ApiKeyInfo & { key: string }> {
    const secret = `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
    const hash = sha256(secret).toString('hex');
    const info: ApiKeyInfo = { id: `key_${randomBytes(6).toString('hex')}`, tenantId, role, createdAt: Date.now(), ...(name ? { name } : {}) };
    // Separate commands, not MULTI: the three keys live on different Cluster slots. The key record comes first.
    await this.redis.hset(this.keys.apiKey(hash), info as unknown as Record<string, string | number>);
    await this.redis.hset(this.keys.tenantKeys(tenantId), info.id, hash);
    await this.redis.sadd(this.keys.tenants(), tenantId);
    return { ...info, key: secret };
  }

  async list(tenantId?: string): Promise<ApiKeyInfo[]> {
    const tenants = tenantId ? [tenantId] : await this.redis.smembers(this.keys.tenants());
    const infos: ApiKeyInfo[] = [];
    for (const tenant of tenants) {
      for (const hash of Object.values(await this.redis.hgetall(this.keys.tenantKeys(tenant)))) {
        const info = await this.read(hash);
        if (info) infos.push(info);
      }
    }
    return infos.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Revokes a key of `tenantId` (or of any tenant when undefined). Returns false when there is no such key. */
  async revoke(keyId: string, tenantId?: string): Promise<boolean> {
    const tenants = tenantId ? [tenantId] : await this.redis.smembers(this.keys.tenants());
    for (const tenant of tenants) {
      const hash = await this.redis.hget(this.keys.tenantKeys(tenant), keyId);
      if (!hash) continue;
      await this.redis.del(this.keys.apiKey(hash)); // the record first: the key stops working at once
      await this.redis.hdel(this.keys.tenantKeys(tenant), keyId);
      return true;
    }
    return false;
  }

  /** The principal behind a bearer token, or undefined for an unknown or revoked one. */
  async authenticate(token: string): Promise<Principal | undefined> {
    const hash = sha256(token);
    if (this.operatorToken && timingSafeEqual(hash, this.operatorToken)) return { kind: 'operator' };
    if (!token.startsWith(KEY_PREFIX)) return undefined;
    const info = await this.read(hash.toString('hex'));
    return info ? { kind: 'tenant', tenantId: info.tenantId, role: info.role, keyId: info.id } : undefined;
  }

  private async read(hash: string): Promise<ApiKeyInfo | undefined> {
    const record = await this.redis.hgetall(this.keys.apiKey(hash));
    if (!record.id) return undefined;
    return {
      id: record.id,
      tenantId: record.tenantId!,
      role: record.role as ApiKeyRole,
      createdAt: Number(record.createdAt),
      ...(record.name ? { name: record.name } : {}),
    };
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
