import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Response } from 'express';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import {
  GENERATE_JOB,
  GENERATIONS_QUEUE,
  type ChatCompletionRequest,
  type ChatMessage,
  type CreateGenerationRequest,
  type GenerationJob,
  type RedisKeys,
  type ControlMessage,
  toGenerationParams,
  type GenerationView,
} from '@tokenwire/contracts';
import {
  EventLog,
  GenerationFinisher,
  UnfinishedGenerations,
  GenerationMetaStore,
  TenantAccounting,
  TokenwireMetrics,
  limitsFor,
  type Admission,
  type TenantLimits,
  LOGGER,
  REDIS_CLIENT,
  REDIS_KEYS,
  TOKENWIRE_CONFIG,
  type GenerationMeta,
  type Logger,
  type TokenwireConfig,
} from '@tokenwire/core';
import { ProviderRegistry, contentText } from '@tokenwire/providers';
import { ApiError, echo } from '../common/api-error';
import { rateLimitHeaders } from './rate-limit-headers';
import { summarizeEvents } from './generation-summary';

/** What a caller of `GenerationsService.create` adds to the request. */
export interface CreateOptions {
  /** The caller's explicit session (X-Session-Id header, conversation id), ahead of the body's `prompt_cache_key` and `user`. */
  sessionKey?: string;
  /**
   * Runs once the generation is admitted, before it is queued (a caller that will follow it subscribes
   * meanwhile, so its subscription's round trips overlap the enqueue). If `create` then throws, it was not queued.
   */
  onAdmitted?: (id: string) => void;
  /**
   * The HTTP response, which gets OpenAI's `x-ratelimit-*` headers (a refusal carries them on its 429).
   * Passed, not found through AsyncLocalStorage: that turns on promise hooks for the whole process,
   * about 10 % of the api's CPU per request (bench/README.md, npm run bench:job-start).
   */
  response?: Pick<Response, 'set' | 'headersSent'>;
}

/** Enqueues, reads and cancels generations. Tenant ownership is checked on every id. */
@Injectable()
export class GenerationsService {
  private readonly modelNames: Set<string>;

  constructor(
    @InjectQueue(GENERATIONS_QUEUE) private readonly queue: Queue,
    private readonly eventLog: EventLog,
    private readonly metaStore: GenerationMetaStore,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly accounting: TenantAccounting,
    private readonly finisher: GenerationFinisher,
    private readonly unfinished: UnfinishedGenerations,
    private readonly providers: ProviderRegistry,
    private readonly metrics: TokenwireMetrics,
  ) {
    this.modelNames = new Set(config.models.map((m) => m.name));
    queue.on('error', (error) => logger.warn({ err: error.message }, 'queue connection error'));
  }

  listModels(): string[] {
    return [...this.modelNames];
  }

  /**
   * Admits and enqueues a generation. Limits (per tenant, shared by every api process):
   * requests and tokens per minute (token buckets), unfinished generations (a cap).
   * Fairness: the job's priority is the tenant's backlog, so a tenant with 200 queued
   * jobs does not delay another tenant's first one (BullMQ runs lower numbers first).
   */
  async create(
    tenantId: string,
    request: (CreateGenerationRequest & { author?: string }) | ChatCompletionRequest,
    { sessionKey, onAdmitted, response }: CreateOptions = {},
  ): Promise<{ id: string; createdAt: number }> {
    if (!this.modelNames.has(request.model)) {
      throw new ApiError(404, 'model_not_found', `The model ${echo(request.model)} does not exist`, 'model');
    }
    const params = toGenerationParams(request);
    this.refuseWhatTheProviderCannotCarry(request.model, request.messages, params);
    const limits = limitsFor(this.config, tenantId);
    // OpenAI takes either name (max_completion_tokens wins); the error names the one the client sent.
    const maxField = request.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    const maxTokens = request[maxField];
    if (maxTokens != null && maxTokens > limits.maxOutputTokens) {
      this.metrics.limitRefusals.inc({ tenant: tenantId, limit: 'max_output_tokens' });
      throw new ApiError(400, 'invalid_request', `${maxField}: at most ${limits.maxOutputTokens} is allowed`, maxField);
    }
    const id = randomUUID();
    const createdAt = Date.now();
    // One round trip: the admission and the reaper's tracking entry are sent together (the tracking entry
    // is taken back on a refusal). Tracked before it is queued: if this process dies from here on, the
    // reaper ends the generation. A generation older than its TTL has no log left: its slot is surely stale.
    const [admission] = await Promise.all([this.accounting.admit(tenantId, limits, id, this.config.generations.ttlSeconds * 1000), this.unfinished.add(id, createdAt)]);
    if (admission.refused) {
      await this.unfinished.remove(id);
      this.refuse(tenantId, limits, admission);
    }
    if (response && !response.headersSent) response.set(rateLimitHeaders(limits, admission.requests, admission.tokens));
    onAdmitted?.(id);
    const backlog = admission.unfinished;
    const job: GenerationJob = {
      generationId: id,
      tenantId,
      model: request.model,
      messages: request.messages,
      params,
      createdAt,
      routingKey: sessionKey ?? request.prompt_cache_key ?? request.user,
    };
    // Concurrent: the meta write does not overwrite a status a fast worker already set.
    // Both settle before any clean-up, so the clean-up cannot run ahead of the meta write.
    const written = await Promise.allSettled([
      this.metaStore.create({ id, tenantId, model: request.model, createdAt, author: 'author' in request ? request.author : undefined, prompt: promptPreview(request.messages) }),
      // A completed job is removed at once: it holds the whole prompt, and nothing reads it after its
      // terminal event (the reaper and cancel treat a missing job as not live; a re-delivery is refused
      // by the pre-flight's terminal marker, not by BullMQ's job id). A failed one stays for `removeOnFail`.
      this.queue.add(GENERATE_JOB, job, { jobId: id, priority: Math.min(backlog, MAX_PRIORITY), removeOnComplete: true }),
    ]);
    const failed = written.find((result) => result.status === 'rejected');
    if (failed) {
      await Promise.all([this.accounting.removeActive(tenantId, id), this.unfinished.remove(id), this.metaStore.abandon(id)]).catch(() => undefined);
      throw failed.reason;
    }
    this.logger.info({ jobId: id, tenantId, model: request.model }, 'generation queued');
    return { id, createdAt };
  }

  /** 400 for tools, a content part or a parameter the model's provider cannot carry: nothing is dropped silently. */
  private refuseWhatTheProviderCannotCarry(model: string, messages: GenerationJob['messages'], params: GenerationJob['params']): void {
    const refusal = this.providers.refusal(model, { messages, params });
    if (refusal) throw new ApiError(400, 'invalid_request', refusal.message, refusal.param);
  }

  /** The generation's meta if it exists and belongs to the tenant. */
  async find(tenantId: string, id: string): Promise<GenerationMeta | undefined> {
    const meta = await this.metaStore.get(id);
    return meta?.tenantId === tenantId ? meta : undefined;
  }

  /** The generation's meta, or 404 when it does not exist or belongs to another tenant. */
  async requireOwned(tenantId: string, id: string): Promise<GenerationMeta> {
    const meta = await this.find(tenantId, id);
    if (!meta) throw new ApiError(404, 'not_found', `no generation with id ${echo(id)}`, 'id');
    return meta;
  }

  async view(tenantId: string, id: string): Promise<GenerationView> {
    const meta = await this.requireOwned(tenantId, id);
    const events = await this.eventLog.readAfter(id, 0);
    return {
      id,
      object: 'generation',
      model: meta.model,
      status: meta.status,
      createdAt: meta.createdAt,
      startedAt: meta.startedAt,
      finishedAt: meta.finishedAt,
      author: meta.author,
      prompt: meta.prompt,
      ...summarizeEvents(events.map((e) => e.event)),
    };
  }

  /**
   * Requests a cancel. A queued job is removed and ended here; a running one is
   * aborted by whichever worker holds it (control channel); a worker that picks
   * the job up later sees the cancel key first. One that had already ended is a 409
   * `already_ended`, over HTTP and on sockets alike.
   */
  async cancel(tenantId: string, id: string, reason = 'cancelled by request'): Promise<true> {
    const meta = await this.requireOwned(tenantId, id);
    if (meta.status === 'done' || meta.status === 'error' || meta.status === 'cancelled') {
      throw new ApiError(409, 'already_ended', `generation ${echo(id)} has already ended (${meta.status})`, 'id');
    }
    await this.requestCancel(id, reason);
    return true;
  }

  /** Cancel without an ownership check, for callers that already own the generation. */
  async requestCancel(id: string, reason: string): Promise<boolean> {
    const message: ControlMessage = { type: 'cancel', generationId: id, reason };
    await this.redis.set(this.keys.cancelRequest(id), reason, 'EX', this.config.generations.ttlSeconds);
    await this.redis.publish(this.keys.controlChannel(), JSON.stringify(message));
    const job = await this.queue.getJob(id);
    if (job && ['waiting', 'delayed', 'prioritized', 'waiting-children'].includes(await job.getState())) {
      try {
        await job.remove();
        const { tenantId, model } = job.data as GenerationJob;
        await this.finisher.finish({ id, tenantId, model }, { type: 'cancelled', reason });
      } catch (error) {
        // Locked: a worker took it meanwhile and will see the cancel key or the control message.
        this.logger.debug({ err: error, jobId: id }, 'queued job was picked up while cancelling');
      }
    }
    this.logger.info({ jobId: id, reason }, 'cancel requested');
    return true;
  }

  /**
   * A refused admission as a 429. Every generating HTTP response, a 429 included, carries OpenAI's
   * `x-ratelimit-*` headers; a 429 also `Retry-After`.
   */
  private refuse(tenantId: string, limits: TenantLimits, admission: Admission): never {
    const headers = rateLimitHeaders(limits, admission.requests, admission.tokens);
    this.metrics.limitRefusals.inc({ tenant: tenantId, limit: admission.refused! });
    if (admission.refused === 'max_concurrent') {
      throw new ApiError(429, 'rate_limited', `tenant has ${limits.maxConcurrent} unfinished generations, the most allowed`, undefined, { ...headers, 'retry-after': '1' });
    }
    const [kind, state, perMinute] =
      admission.refused === 'requests_per_minute' ? (['requests', admission.requests, limits.requestsPerMinute] as const) : (['tokens', admission.tokens, limits.tokensPerMinute] as const);
    const retryAfter = String(Math.max(1, Math.ceil(state.waitMs / 1000)));
    throw new ApiError(429, 'rate_limited', `tenant is over its ${kind}-per-minute limit (${perMinute}); retry after ${retryAfter} s`, undefined, {
      ...headers,
      'retry-after': retryAfter,
    });
  }
}

/** BullMQ's largest priority. */
const MAX_PRIORITY = 2_097_152;


/** The last user message's text, as much of it as a conversation view shows. */
function promptPreview(messages: ChatMessage[]): string | undefined {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  return last ? contentText(last.content).slice(0, 4000) : undefined;
}
