import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  BATCH_ENDPOINTS,
  GENERATIONS_QUEUE,
  anthropicToChatRequest,
  batchInputLineSchema,
  messagesBatchLineSchema,
  responsesBatchLineSchema,
  responsesToChatRequest,
  toGenerationParams,
  type Batch,
  type BatchEndpoint,
  type BatchInputLine,
  type BatchObject,
  type BatchOutputLine,
  type CreateBatchFromFile,
  type RedisKeys,
} from '@tokenwire/contracts';
import { ProviderRegistry } from '@tokenwire/providers';
import { BatchFeeder, BatchStore, LOGGER, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ApiError, echo } from '../common/api-error';
import { FilesStore } from '../files/files.store';
import { BATCH_OUTPUT_VIEWS, type ChatCompletionBody } from './batch-output-views';

/** How a batch was created; a direct JSONL upload has no input file. */
type BatchInfo = Pick<BatchObject, 'endpoint' | 'input_file_id' | 'completion_window' | 'metadata'>;
const DIRECT_UPLOAD: BatchInfo = { endpoint: '/v1/chat/completions', input_file_id: null, completion_window: '24h', metadata: null };
const COMPLETION_WINDOW_SECONDS = 24 * 3600;

/** A raw line's `url` when it names one of the batch endpoints. */
function urlOf(value: unknown): BatchEndpoint | undefined {
  const url = (value as { url?: unknown } | null)?.url;
  return typeof url === 'string' && (BATCH_ENDPOINTS as readonly string[]).includes(url) ? (url as BatchEndpoint) : undefined;
}

/** The ids of a batch's output and error files (views of its results, see FilesService). */
export const batchFileId = (batchId: string, which: 'output' | 'errors') => `file-${batchId}-${which}`;

/** Validates, stores and feeds batches; checks ownership on every id. */
@Injectable()
export class BatchesService {
  private readonly modelNames: Set<string>;
  private readonly feeder: BatchFeeder;

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
    this.feeder = new BatchFeeder(store, queue, { attempts: config.batches.itemAttempts, keepFailedJobsSeconds: config.generations.ttlSeconds });
  }

  /**
   * Parses an upload: a JSON array of lines, or JSONL text. Errors name the line (1-based) and the field.
   * Every line speaks the batch's endpoint (given, else the first line's `url`, else chat completions);
   * Responses and Messages lines become the chat request they run as.
   */
  parse(body: unknown, endpoint?: BatchEndpoint): { endpoint: BatchEndpoint; lines: BatchInputLine[] } {
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
    const batchEndpoint = endpoint ?? urlOf(raw[0]) ?? '/v1/chat/completions';
    const seen = new Set<string>();
    const lines = raw.map((value, i) => {
      const named = (value as { url?: unknown } | null)?.url;
      if (named !== undefined && urlOf(value) === undefined) throw new ApiError(400, 'invalid_request', `line ${i + 1}: url: one of ${BATCH_ENDPOINTS.join(', ')}`);
      const url = urlOf(value) ?? batchEndpoint;
      if (url !== batchEndpoint) throw new ApiError(400, 'invalid_request', `line ${i + 1}: url: every line of this batch goes to ${batchEndpoint}, not ${echo(url)}`);
      const line = this.parseLine({ ...(value as object), url }, url, i + 1);
      if (seen.has(line.custom_id)) throw new ApiError(400, 'invalid_request', `line ${i + 1}: custom_id "${line.custom_id}" is used twice`);
      seen.add(line.custom_id);
      const { body: request } = line;
      if (!this.modelNames.has(request.model)) throw new ApiError(400, 'model_not_found', `line ${i + 1}: the model ${echo(request.model)} does not exist`);
      const refusal = this.providers.refusal(request.model, { messages: request.messages, params: toGenerationParams(request) });
      if (refusal) throw new ApiError(400, 'invalid_request', `line ${i + 1}: ${refusal.message}`, refusal.param);
      return line;
    });
    return { endpoint: batchEndpoint, lines };
  }

  /** One line, validated against its endpoint's schema, as the chat line it runs as. */
  private parseLine(value: unknown, url: BatchEndpoint, lineNumber: number): BatchInputLine {
    const fail = (error: z.ZodError): never => {
      const issue = error.issues[0]!;
      throw new ApiError(400, 'invalid_request', `line ${lineNumber}: ${issue.path.join('.') || '(line)'}: ${z.prettifyError(error).split('\n')[0]?.replace(/^✖ /, '') ?? issue.message}`);
    };
    if (url === '/v1/messages') {
      const parsed = messagesBatchLineSchema.safeParse(value);
      if (!parsed.success) return fail(parsed.error);
      return { custom_id: parsed.data.custom_id, method: 'POST', url: '/v1/chat/completions', body: { ...anthropicToChatRequest(parsed.data.body), stream: false } };
    }
    if (url === '/v1/responses') {
      const parsed = responsesBatchLineSchema.safeParse(value);
      if (!parsed.success) return fail(parsed.error);
      return { custom_id: parsed.data.custom_id, method: 'POST', url: '/v1/chat/completions', body: { ...responsesToChatRequest(parsed.data.body), stream: false } };
    }
    const parsed = batchInputLineSchema.safeParse(value);
    if (!parsed.success) return fail(parsed.error);
    return parsed.data;
  }

  async create(tenantId: string, lines: BatchInputLine[], info: Partial<BatchInfo> = {}): Promise<BatchObject> {
    const id = `batch_${randomUUID().replaceAll('-', '')}`;
    await this.redis.set(this.keys.batchInfo(id), JSON.stringify({ ...DIRECT_UPLOAD, ...info }), 'EX', this.config.batches.ttlSeconds);
    await this.store.create(id, tenantId, lines, this.config.batches.concurrency);
    // If this process dies here, the workers' recovery sweep feeds the batch (it is listed as unfinished).
    await this.feeder.feed(id, tenantId);
    this.logger.info({ batchId: id, tenantId, items: lines.length }, 'batch created');
    return this.require(tenantId, id);
  }

  /** A batch of a file uploaded with purpose `batch` (validated again: the model list may have changed). */
  async createFromFile(tenantId: string, request: CreateBatchFromFile): Promise<BatchObject> {
    const text = await this.files.text(tenantId, request.input_file_id);
    if (text === undefined) throw new ApiError(404, 'not_found', `no file with id ${echo(request.input_file_id)}`, 'input_file_id');
    const { lines } = this.parse(text, request.endpoint);
    return this.create(tenantId, lines, { endpoint: request.endpoint, input_file_id: request.input_file_id, completion_window: request.completion_window, metadata: request.metadata ?? null });
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
      error_file_id: ended !== null && batch.request_counts.failed + batch.request_counts.cancelled > 0 ? batchFileId(id, 'errors') : null,
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

  /** Result lines in input order; a Responses or Messages batch's successes carry that API's object. */
  async *results(batch: Pick<BatchObject, 'id' | 'endpoint' | 'request_counts'>, which: 'output' | 'errors'): AsyncGenerator<string> {
    const view = which === 'output' ? BATCH_OUTPUT_VIEWS[batch.endpoint as BatchEndpoint] : undefined;
    for await (const line of this.store.results(batch.id, batch.request_counts.total, which)) {
      if (!view) {
        yield line;
        continue;
      }
      const parsed = JSON.parse(line) as BatchOutputLine;
      if (parsed.response) parsed.response.body = view(parsed.response.body as unknown as ChatCompletionBody) as Record<string, unknown>;
      yield JSON.stringify(parsed);
    }
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
