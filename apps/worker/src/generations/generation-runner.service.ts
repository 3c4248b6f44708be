import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { GenerationJob, RedisKeys, StreamEventBody, TerminalEventBody } from '@tokenwire/contracts';
import {
  EventLog,
  GenerationFinisher,
  GenerationMetaStore,
  LOGGER,
  REDIS_CLIENT,
  REDIS_KEYS,
  TOKENWIRE_CONFIG,
  TokenwireMetrics,
  type GenerationUsage,
  type Logger,
  type TokenwireConfig,
} from '@tokenwire/core';
import { UpstreamError, type ProviderFinishReason, type ProviderUsage } from '@tokenwire/providers';
import { UpstreamRouterService } from '../upstream/upstream-router.service';

/** Abort reason used at shutdown: the job goes back to the queue instead of ending. */
export const HAND_BACK = 'worker shutting down: handing the job back';

export type RunOutcome = 'ended' | 'handed-back';

/** Appends in flight (written to Redis, not yet acknowledged) before reading more from the upstream. */
const MAX_IN_FLIGHT = 256;

/**
 * Writes one generation's events in order without awaiting a Redis round trip per token.
 * Text deltas are coalesced by `coalesce`: `off`, one event per delta; `turn`, the deltas of
 * one event-loop turn (one upstream read) become one event; a number, those within that many ms.
 */
class GenerationEventWriter {
  private seq: number;
  private last: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private failure: unknown;
  private text = '';
  private flushTimer?: NodeJS.Immediate | NodeJS.Timeout;
  private readonly appendEvent: ReturnType<EventLog['appender']>;
  /** Set when Redis says the generation already ended: this run no longer owns it. */
  ended = false;

  constructor(
    eventLog: EventLog,
    generationId: string,
    lastSeq: number,
    private readonly coalesce: 'off' | 'turn' | number,
    private readonly onLost: () => void,
  ) {
    this.seq = lastSeq;
    this.appendEvent = eventLog.appender(generationId);
  }

  appendText(text: string): void {
    if (this.coalesce === 'off') {
      for (const piece of boundedPieces(text)) this.append({ type: 'chunk', delta: piece });
      return;
    }
    this.text += text;
    if (this.text.length >= MAX_EVENT_TEXT) this.flushText();
    else if (!this.flushTimer) {
      this.flushTimer = this.coalesce === 'turn' ? setImmediate(() => this.flushText()) : setTimeout(() => this.flushText(), this.coalesce);
    }
  }

  append(body: StreamEventBody): void {
    this.flushText(); // keeps order: buffered text goes before any other event
    this.write(body);
  }

  /** Resolves at once, or once Redis has caught up when too many appends are in flight (a fast upstream waits). */
  async backpressure(): Promise<void> {
    if (this.inFlight > MAX_IN_FLIGHT) await this.last;
  }

  /** The first append Redis refused or could not take, if any: the cause when the run stops. */
  get writeFailure(): unknown {
    return this.failure;
  }

  /** Waits for every append so far; throws the first write failure. */
  async flush(): Promise<void> {
    this.flushText();
    await this.last;
    if (this.failure) throw this.failure;
  }

  private flushText(): void {
    if (this.flushTimer) {
      // Each kind with its own clear: clearImmediate on a Timeout corrupts Node's immediate
      // queue, after which setImmediate callbacks (ioredis auto-pipelining) never run.
      if (this.coalesce === 'turn') clearImmediate(this.flushTimer as NodeJS.Immediate);
      else clearTimeout(this.flushTimer as NodeJS.Timeout);
      this.flushTimer = undefined;
    }
    if (!this.text) return;
    const text = this.text;
    this.text = '';
    for (const piece of boundedPieces(text)) this.write({ type: 'chunk', delta: piece });
  }

  private write(body: StreamEventBody): void {
    if (this.ended || this.failure) return;
    this.inFlight++;
    this.last = this.appendEvent(++this.seq, body).then(
      (written) => {
        this.inFlight--;
        if (!written && !this.ended) {
          this.ended = true;
          this.onLost();
        }
      },
      (error: unknown) => {
        this.inFlight--;
        this.failure ??= error;
        this.onLost();
      },
    );
  }
}

@Injectable()
export class GenerationRunnerService {
  constructor(
    private readonly router: UpstreamRouterService,
    private readonly eventLog: EventLog,
    private readonly metaStore: GenerationMetaStore,
    private readonly finisher: GenerationFinisher,
    private readonly metrics: TokenwireMetrics,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  /**
   * Runs one generation to exactly one terminal event. Never throws for upstream
   * faults or cancellation (those are events); throws only when Redis itself fails.
   */
  async run(job: GenerationJob, signal: AbortSignal): Promise<RunOutcome> {
    const id = job.generationId;
    const log = this.logger.child({ jobId: id, tenantId: job.tenantId, model: job.model });

    // One round trip for the three reads/writes before the upstream call (auto-pipelined together).
    const [cancelRequested, , lastSeq] = await Promise.all([
      this.redis.exists(this.keys.cancelRequest(id)),
      this.metaStore.markRunning(id),
      this.eventLog.lastSeq(id),
    ]);
    if (cancelRequested) {
      await this.end(job, { type: 'cancelled', reason: 'cancelled before start' });
      return 'ended';
    }
    const ownership = new AbortController();
    const writer = new GenerationEventWriter(this.eventLog, id, lastSeq, this.config.worker.coalesce, () => ownership.abort(new Error('generation ended elsewhere')));
    if (lastSeq > 0) {
      // A recovered job re-runs from the start: clients drop the partial text (see README, "Crash recovery").
      writer.append({ type: 'restarted', fromSeq: lastSeq + 1 });
      log.warn({ fromSeq: lastSeq + 1 }, 'generation restarted after a previous attempt stopped');
    }

    const upstreamSignal = AbortSignal.any([signal, ownership.signal]);
    const startedAt = performance.now();
    const metrics = this.metrics;
    // Label children bound once per job: a token then costs no label hashing.
    const interToken = metrics.interToken.labels(job.model);
    const tokenCounter = metrics.tokens.labels(job.model);
    metrics.queueWait.observe({ model: job.model }, Math.max(0, Date.now() - job.createdAt) / 1000);
    metrics.runningGenerations.inc();
    let lastTokenAt = 0;
    let usage: ProviderUsage | undefined;
    let finishReason: ProviderFinishReason = 'stop';
    let tokens = 0;
    try {
      const stream = this.router.stream(job.model, { messages: job.messages, params: job.params }, upstreamSignal, log, id);
      for await (const part of stream) {
        switch (part.type) {
          case 'text-delta': {
            const now = performance.now();
            if (tokens++ === 0) {
              log.info({ ttftMs: Math.round(now - startedAt) }, 'first token');
              metrics.ttft.observe({ model: job.model, stage: 'upstream' }, (now - startedAt) / 1000);
              metrics.ttft.observe({ model: job.model, stage: 'total' }, Math.max(0, Date.now() - job.createdAt) / 1000);
            } else interToken.observe((now - lastTokenAt) / 1000);
            lastTokenAt = now;
            tokenCounter.inc();
            writer.appendText(part.text);
            break;
          }
          case 'tool-call-delta': {
            const { index, id: callId, name } = part;
            boundedPieces(part.arguments ?? '').forEach((args, i) =>
              writer.append({ type: 'chunk', delta: '', toolCalls: [i === 0 ? { index, id: callId, name, arguments: args } : { index, arguments: args }] }),
            );
            break;
          }
          case 'usage':
            usage = { ...usage, ...part.usage };
            break;
          case 'finish':
            finishReason = part.reason;
            break;
        }
        if (writer.ended) break;
        await writer.backpressure();
      }
      await writer.flush();
      if (writer.ended) {
        log.warn('generation ended elsewhere; this run stops');
        return 'ended';
      }
      const counted = countUsage(job, usage, tokens);
      writer.append({ type: 'usage', ...counted, totalTokens: counted.promptTokens + counted.completionTokens });
      await writer.flush();
      log.info({ tokens, durationMs: Math.round(performance.now() - startedAt), finishReason }, 'stream completed');
      await this.end(job, { type: 'done', finishReason }, counted);
      metrics.generations.inc({ model: job.model, outcome: 'done' });
      return 'ended';
    } catch (error) {
      await writer.flush().catch(() => undefined);
      if (writer.ended) return 'ended';
      if (signal.aborted && signal.reason === HAND_BACK) {
        log.info({ tokens }, 'stream closed early: handed back to the queue');
        metrics.generations.inc({ model: job.model, outcome: 'handed_back' });
        return 'handed-back';
      }
      metrics.generations.inc({ model: job.model, outcome: signal.aborted ? 'cancelled' : 'error' });
      if (signal.aborted) {
        log.info({ tokens }, 'stream closed early: cancelled');
        await this.end(job, { type: 'cancelled', reason: reasonText(signal.reason) }, countUsage(job, usage, tokens));
      } else if (error instanceof UpstreamError) {
        log.warn({ tokens, code: error.code, status: error.status, err: error.message }, 'stream closed early: upstream error');
        await this.end(job, { type: 'error', code: error.code, message: error.message, status: error.status, retryable: error.retryable }, countUsage(job, usage, tokens));
      } else {
        log.error({ err: writer.writeFailure ?? error }, 'generation failed');
        await this.end(job, { type: 'error', code: 'internal_error', message: 'the worker failed while running the generation' });
      }
      return 'ended';
    } finally {
      metrics.runningGenerations.dec();
    }
  }

  private end(job: GenerationJob, body: TerminalEventBody, usage?: GenerationUsage): Promise<boolean> {
    return this.finisher.finish({ id: job.generationId, tenantId: job.tenantId, model: job.model }, body, usage);
  }
}

/**
 * Largest text (UTF-16 units) one event carries. A huge upstream chunk (a 5 MB tool
 * argument) becomes several events, so no pub/sub message or socket frame is huge.
 */
export const MAX_EVENT_TEXT = 16 * 1024;

/** `text` cut into pieces of at most MAX_EVENT_TEXT, never inside a surrogate pair; `['']` for ''. */
export function boundedPieces(text: string): string[] {
  if (text.length <= MAX_EVENT_TEXT) return [text];
  const pieces: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + MAX_EVENT_TEXT);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end--; // keep a high surrogate with its pair
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

/**
 * Usage as the upstream reported it; what it left out is counted: completion tokens
 * as text deltas received, prompt tokens estimated at 4 characters per token.
 */
function countUsage(job: GenerationJob, usage: ProviderUsage | undefined, deltas: number): GenerationUsage {
  const promptChars = job.messages.reduce((sum, m) => sum + JSON.stringify(m.content ?? '').length, 0);
  return {
    promptTokens: usage?.promptTokens ?? Math.ceil(promptChars / 4),
    completionTokens: usage?.completionTokens ?? deltas,
  };
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' ? reason : 'cancelled';
}
