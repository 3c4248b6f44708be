import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyInfo, ApiKeyRole, RedisKeys } from '@tokenwire/contracts';
import { REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { RevocationService } from './revocation.service';

/** Who is calling: a tenant's key, or the operator (no tenant, manages keys only). */
export type Principal = { kind: 'tenant'; tenantId: string; role: ApiKeyRole; keyId?: string } | { kind: 'operator' };

/** The answer to a bearer token: who it is, or why it is refused (for the audit trail). */
export type Authentication =
  | { ok: true; principal: Principal }
  | { ok: false; reason: 'unknown' | 'revoked'; keyId?: string; tenantId?: string };

const KEY_PREFIX = 'tw_';
/** How long a revoked key's id and tenant are kept, so later attempts with it are audited by key id. */
const REVOKED_KEY_TTL_SECONDS = 30 * 24 * 3600;

/** API keys in Redis, stored only as SHA-256 hashes; the secret is shown once, at creation. */
@Injectable()
export class ApiKeysService {
  private readonly operatorToken?: Buffer;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) config: TokenwireConfig,
    private readonly revocations: RevocationService,
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

  /**
   * Revokes a key of `tenantId` (or of any tenant when undefined); undefined when there is no such key.
   * HTTP refuses it from the next request; every api process drops its sockets (notice on the auth channel).
   */
  async revoke(keyId: string, tenantId?: string): Promise<{ id: string; tenantId: string } | undefined> {
    const tenants = tenantId ? [tenantId] : await this.redis.smembers(this.keys.tenants());
    for (const tenant of tenants) {
      const hash = await this.redis.hget(this.keys.tenantKeys(tenant), keyId);
      if (!hash) continue;
      await this.forget(tenant, keyId, hash);
      await this.revocations.publish({ type: 'key-revoked', keyId, tenantId: tenant });
      return { id: keyId, tenantId: tenant };
    }
    return undefined;
  }

  /** Deletes a tenant: revokes every key it has. Returns the revoked key ids, or undefined for an unknown tenant. */
  async deleteTenant(tenantId: string): Promise<string[] | undefined> {
    if (!(await this.redis.sismember(this.keys.tenants(), tenantId))) return undefined;
    const keys = await this.redis.hgetall(this.keys.tenantKeys(tenantId));
    for (const [keyId, hash] of Object.entries(keys)) await this.forget(tenantId, keyId, hash);
    await this.redis.srem(this.keys.tenants(), tenantId);
    await this.revocations.publish({ type: 'tenant-deleted', tenantId });
    return Object.keys(keys);
  }

  /** Whether a tenant key is still valid: sockets ask on every event, so a revocation holds even before its notice arrives. */
  async isLive(tenantId: string, keyId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.tenantKeys(tenantId), keyId)) === 1;
  }

  /** The principal behind a bearer token, or why it is refused. */
  async authenticate(token: string): Promise<Authentication> {
    const hash = sha256(token);
    if (this.operatorToken && timingSafeEqual(hash, this.operatorToken)) return { ok: true, principal: { kind: 'operator' } };
    if (!token.startsWith(KEY_PREFIX)) return { ok: false, reason: 'unknown' };
    const hex = hash.toString('hex');
    const info = await this.read(hex);
    if (info) return { ok: true, principal: { kind: 'tenant', tenantId: info.tenantId, role: info.role, keyId: info.id } };
    const revoked = await this.redis.hgetall(this.keys.revokedApiKey(hex));
    return revoked.id ? { ok: false, reason: 'revoked', keyId: revoked.id, tenantId: revoked.tenantId } : { ok: false, reason: 'unknown' };
  }

  /** Removes a key: its record first (HTTP stops accepting it at once), then its tenant entry (sockets stop), leaving a tombstone for the audit. */
  private async forget(tenantId: string, keyId: string, hash: string): Promise<void> {
    await this.redis.del(this.keys.apiKey(hash));
    await this.redis.hdel(this.keys.tenantKeys(tenantId), keyId);
    await this.redis.multi().hset(this.keys.revokedApiKey(hash), { id: keyId, tenantId }).expire(this.keys.revokedApiKey(hash), REVOKED_KEY_TTL_SECONDS).exec();
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
