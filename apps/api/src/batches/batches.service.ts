import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  GENERATIONS_QUEUE,
  batchInputLineSchema,
  toGenerationParams,
  type Batch,
  type BatchInputLine,
  type BatchObject,
  type CreateBatchFromFile,
  type RedisKeys,
} from '@tokenwire/contracts';
import { ProviderRegistry } from '@tokenwire/providers';
import { BatchStore, LOGGER, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, feedBatch, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ApiError, echo } from '../common/api-error';
import { FilesStore } from '../files/files.store';

/** How a batch was created; a direct JSONL upload has no input file. */
type BatchInfo = Pick<BatchObject, 'endpoint' | 'input_file_id' | 'completion_window' | 'metadata'>;
const DIRECT_UPLOAD: BatchInfo = { endpoint: '/v1/chat/completions', input_file_id: null, completion_window: '24h', metadata: null };
const COMPLETION_WINDOW_SECONDS = 24 * 3600;

/** The ids of a batch's output and error files (views of its results, see FilesService). */
export const batchFileId = (batchId: string, which: 'output' | 'errors') => `file-${batchId}-${which}`;

/** Validates, stores and feeds batches; checks ownership on every id. */
@Injectable()
export class BatchesService {
  private readonly modelNames: Set<string>;

  constructor(
    private readonly store: BatchStore,
    private readonly files: FilesStore,
    @InjectQueue(GENERATIONS_QUEUE) private readonly queue: Queue,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly providers: ProviderRegistry,
  ) {
    this.modelNames = new Set(config.models.map((m) => m.name));
  }

  /** Parses an upload: a JSON array of lines, or JSONL text. Errors name the line (1-based) and the field. */
  parse(body: unknown): BatchInputLine[] {
    let raw: unknown[];
    if (Array.isArray(body)) raw = body;
    else if (typeof body === 'string') {
      raw = [];
      body.split('\n').forEach((text, i) => {
        if (!text.trim()) return;
        try {
          raw.push(JSON.parse(text));
        } catch {
          throw new ApiError(400, 'invalid_request', `line ${i + 1}: not valid JSON`);
        }
      });
    } else throw new ApiError(400, 'invalid_request', 'send JSONL (content-type application/jsonl) or a JSON array of batch lines');
    if (raw.length === 0) throw new ApiError(400, 'invalid_request', 'the batch is empty');
    if (raw.length > this.config.batches.maxItems) throw new ApiError(400, 'invalid_request', `at most ${this.config.batches.maxItems} lines per batch`);
    const seen = new Set<string>();
    return raw.map((value, i) => {
      const parsed = batchInputLineSchema.safeParse(value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ApiError(400, 'invalid_request', `line ${i + 1}: ${issue.path.join('.') || '(line)'}: ${z.prettifyError(parsed.error).split('\n')[0]?.replace(/^✖ /, '') ?? issue.message}`);
      }
      if (seen.has(parsed.data.custom_id)) throw new ApiError(400, 'invalid_request', `line ${i + 1}: custom_id "${parsed.data.custom_id}" is used twice`);
      seen.add(parsed.data.custom_id);
      const { body: request } = parsed.data;
      if (!this.modelNames.has(request.model)) throw new ApiError(400, 'model_not_found', `line ${i + 1}: the model ${echo(request.model)} does not exist`);
      const refusal = this.providers.refusal(request.model, { messages: request.messages, params: toGenerationParams(request) });
      if (refusal) throw new ApiError(400, 'invalid_request', `line ${i + 1}: ${refusal.message}`, refusal.param);
      return parsed.data;
    });
  }

  async create(tenantId: string, lines: BatchInputLine[], info: BatchInfo = DIRECT_UPLOAD): Promise<BatchObject> {
    const id = `batch_${randomUUID().replaceAll('-', '')}`;
    await this.redis.set(this.keys.batchInfo(id), JSON.stringify(info), 'EX', this.config.batches.ttlSeconds);
    await this.store.create(id, tenantId, lines);
    await feedBatch(this.store, this.queue, id, tenantId, this.config.batches.concurrency, this.config.batches.itemAttempts);
    this.logger.info({ batchId: id, tenantId, items: lines.length }, 'batch created');
    return this.require(tenantId, id);
  }

  /** A batch of a file uploaded with purpose `batch` (validated again: the model list may have changed). */
  async createFromFile(tenantId: string, request: CreateBatchFromFile): Promise<BatchObject> {
    const text = await this.files.text(tenantId, request.input_file_id);
    if (text === undefined) throw new ApiError(404, 'not_found', `no file with id ${echo(request.input_file_id)}`, 'input_file_id');
    return this.create(tenantId, this.parse(text), { endpoint: request.endpoint, input_file_id: request.input_file_id, completion_window: request.completion_window, metadata: request.metadata ?? null });
  }

  /** The batch as the API answers it, or 404 (also for another tenant's). */
  async require(tenantId: string, id: string): Promise<BatchObject> {
    const [batch, json] = await Promise.all([this.stored(tenantId, id), this.redis.get(this.keys.batchInfo(id))]);
    const info: BatchInfo = json ? (JSON.parse(json) as BatchInfo) : DIRECT_UPLOAD;
    const ended = batch.status === 'completed' || batch.status === 'cancelled' ? (batch.finished_at ?? null) : null;
    return {
      ...batch,
      ...info,
      output_file_id: ended !== null ? batchFileId(id, 'output') : null,
      error_file_id: ended !== null && batch.request_counts.failed > 0 ? batchFileId(id, 'errors') : null,
      errors: null,
      in_progress_at: batch.created_at,
      expires_at: batch.created_at + COMPLETION_WINDOW_SECONDS,
      finalizing_at: null,
      completed_at: batch.status === 'completed' ? ended : null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: batch.status === 'cancelled' ? ended : null,
    };
  }

  /** The stored state, or 404 (also for another tenant's). */
  async stored(tenantId: string, id: string): Promise<Batch> {
    const batch = await this.store.get(id, tenantId);
    if (!batch) throw new ApiError(404, 'not_found', `no batch with id ${echo(id)}`, 'id');
    const { tenantId: _owner, ...view } = batch;
    return view;
  }

  async cancel(tenantId: string, id: string): Promise<BatchObject> {
    await this.stored(tenantId, id);
    const cancelled = await this.store.cancel(id);
    if (cancelled === undefined) throw new ApiError(409, 'already_ended', `batch ${echo(id)} has already ended`, 'id');
    this.logger.info({ batchId: id, cancelled }, 'batch cancelled');
    return this.require(tenantId, id);
  }

  results(id: string, total: number, which: 'output' | 'errors'): AsyncGenerator<string> {
    return this.store.results(id, total, which);
  }

  /** Calls `onProgress` whenever the counts change (polling Redis), until the batch ends or `signal` aborts. */
  async watch(tenantId: string, id: string, onProgress: (batch: BatchObject) => void, signal: AbortSignal): Promise<void> {
    let last = '';
    while (!signal.aborted) {
      const batch = await this.require(tenantId, id);
      const key = JSON.stringify(batch);
      if (key !== last) {
        last = key;
        onProgress(batch);
      }
      if (batch.status === 'completed' || batch.status === 'cancelled') return;
      await new Promise((resolve) => setTimeout(resolve, PROGRESS_POLL_MS));
    }
  }
}

/** Progress is read from Redis at this interval (counts change at most this often on the wire). */
const PROGRESS_POLL_MS = 250;
