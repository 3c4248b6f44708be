import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { FileObject, RedisKeys } from '@tokenwire/contracts';
import { REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';

/** Bytes read per GETRANGE when a file is downloaded: the api never holds a whole file for a download. */
const READ_CHUNK = 256 * 1024;

/**
 * Uploaded files in Redis, under their tenant: metadata (a hash), bytes (a string) and the
 * tenant's index (a sorted set), all expiring after `batches.ttlSeconds` (a file is a batch's
 * input). Redis, not a directory: every api process sees every file with no shared disk, and
 * the batch made from a file already lives in Redis (README: measured upload and download).
 */
@Injectable()
export class FilesStore {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  async create(tenantId: string, filename: string, content: Buffer, now = Date.now()): Promise<FileObject> {
    const id = `file-${randomBytes(12).toString('hex')}`;
    const ttl = this.config.batches.ttlSeconds;
    const createdAt = Math.floor(now / 1000);
    const file: FileObject = { id, object: 'file', bytes: content.length, created_at: createdAt, expires_at: createdAt + ttl, filename, purpose: 'batch', status: 'processed', status_details: null };
    const k = this.keys;
    await this.redis
      .multi()
      .set(k.fileContent(tenantId, id), content, 'EX', ttl)
      .hset(k.file(tenantId, id), { id, bytes: file.bytes, createdAt, expiresAt: file.expires_at!, filename })
      .expire(k.file(tenantId, id), ttl)
      .zadd(k.tenantFiles(tenantId), now, id)
      .expire(k.tenantFiles(tenantId), ttl)
      .exec();
    return file;
  }

  async get(tenantId: string, id: string): Promise<FileObject | undefined> {
    const hash = await this.redis.hgetall(this.keys.file(tenantId, id));
    if (!hash.id) return undefined;
    return {
      id,
      object: 'file',
      bytes: Number(hash.bytes),
      created_at: Number(hash.createdAt),
      expires_at: Number(hash.expiresAt),
      filename: hash.filename ?? '',
      purpose: 'batch',
      status: 'processed',
      status_details: null,
    };
  }

  /** The tenant's files, newest first; ids whose file expired are dropped from the index. */
  async list(tenantId: string, limit: number): Promise<FileObject[]> {
    const ids = await this.redis.zrevrange(this.keys.tenantFiles(tenantId), 0, -1);
    const files: FileObject[] = [];
    for (const id of ids) {
      const file = await this.get(tenantId, id);
      if (file) files.push(file);
      else await this.redis.zrem(this.keys.tenantFiles(tenantId), id);
      if (files.length >= limit) break;
    }
    return files;
  }

  async delete(tenantId: string, id: string): Promise<boolean> {
    const k = this.keys;
    const [[, removed] = []] = (await this.redis.multi().del(k.file(tenantId, id), k.fileContent(tenantId, id)).zrem(k.tenantFiles(tenantId), id).exec()) ?? [];
    return Number(removed) > 0;
  }

  /** The file's bytes, a chunk at a time. */
  async *chunks(tenantId: string, id: string): AsyncGenerator<Buffer> {
    const key = this.keys.fileContent(tenantId, id);
    for (let start = 0; ; start += READ_CHUNK) {
      const chunk = await this.redis.getrangeBuffer(key, start, start + READ_CHUNK - 1);
      if (chunk.length) yield chunk;
      if (chunk.length < READ_CHUNK) return;
    }
  }

  /** The whole file as text (to make a batch of it: bounded by the upload limit, like a direct JSONL upload). */
  async text(tenantId: string, id: string): Promise<string | undefined> {
    const content = await this.redis.getBuffer(this.keys.fileContent(tenantId, id));
    return content?.toString('utf8');
  }
}
