import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { GenerationJob, RedisKeys, StreamEventBody, TerminalEventBody } from '@tokenwire/contracts';
import { EventLog, GenerationMetaStore, LOGGER, REDIS_CLIENT, REDIS_KEYS, type Logger } from '@tokenwire/core';
import { UpstreamError, type ProviderFinishReason, type ProviderUsage } from '@tokenwire/providers';
import { UpstreamRouterService } from '../upstream/upstream-router.service';

/** Attempts (over about 30 s) to write a terminal event while Redis is unreachable. */
const TERMINAL_WRITE_ATTEMPTS = 8;

/** Abort reason used at shutdown: the job goes back to the queue instead of ending. */
export const HAND_BACK = 'worker shutting down: handing the job back';

export type RunOutcome = 'ended' | 'handed-back';

/** Writes one generation's events in order without awaiting a Redis round trip per token. */
class GenerationEventWriter {
  private seq: number;
  private last: Promise<unknown> = Promise.resolve();
  private failure: unknown;
  /** Set when Redis says the generation already ended: this run no longer owns it. */
  ended = false;

  constructor(
    private readonly eventLog: EventLog,
    private readonly generationId: string,
    lastSeq: number,
    private readonly onLost: () => void,
  ) {
    this.seq = lastSeq;
  }

  get written(): number {
    return this.seq;
  }

  append(body: StreamEventBody): void {
    if (this.ended || this.failure) return;
    this.last = this.eventLog.append(this.generationId, ++this.seq, body).then(
      (written) => {
        if (!written && !this.ended) {
          this.ended = true;
          this.onLost();
        }
      },
      (error: unknown) => {
        this.failure ??= error;
        this.onLost();
      },
    );
  }

  /** Waits for every append so far; throws the first write failure. */
  async flush(): Promise<void> {
    await this.last;
    if (this.failure) throw this.failure;
  }
}

@Injectable()
export class GenerationRunnerService {
  constructor(
    private readonly router: UpstreamRouterService,
    private readonly eventLog: EventLog,
    private readonly metaStore: GenerationMetaStore,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Runs one generation to exactly one terminal event. Never throws for upstream
   * faults or cancellation (those are events); throws only when Redis itself fails.
   */
  async run(job: GenerationJob, signal: AbortSignal): Promise<RunOutcome> {
    const id = job.generationId;
    const log = this.logger.child({ jobId: id, tenantId: job.tenantId, model: job.model });

    if (await this.redis.exists(this.keys.cancelRequest(id))) {
      await this.end(id, { type: 'cancelled', reason: 'cancelled before start' }, log);
      return 'ended';
    }
    await this.metaStore.markRunning(id);

    const lastSeq = await this.eventLog.lastSeq(id);
    const ownership = new AbortController();
    const writer = new GenerationEventWriter(this.eventLog, id, lastSeq, () => ownership.abort(new Error('generation ended elsewhere')));
    if (lastSeq > 0) {
      // A recovered job re-runs from the start: clients drop the partial text (see README, "Crash recovery").
      writer.append({ type: 'restarted', fromSeq: lastSeq + 1 });
      log.warn({ fromSeq: lastSeq + 1 }, 'generation restarted after a previous attempt stopped');
    }

    const upstreamSignal = AbortSignal.any([signal, ownership.signal]);
    const startedAt = performance.now();
    let usage: ProviderUsage | undefined;
    let finishReason: ProviderFinishReason = 'stop';
    let tokens = 0;
    try {
      const stream = this.router.stream(job.model, { messages: job.messages, params: job.params }, upstreamSignal, log);
      for await (const { chunk: part } of stream) {
        switch (part.type) {
          case 'text-delta':
            if (tokens++ === 0) log.info({ ttftMs: Math.round(performance.now() - startedAt) }, 'first token');
            writer.append({ type: 'chunk', delta: part.text });
            break;
          case 'tool-call-delta':
            writer.append({
              type: 'chunk',
              delta: '',
              toolCalls: [{ index: part.index, id: part.id, name: part.name, arguments: part.arguments }],
            });
            break;
          case 'usage':
            usage = { ...usage, ...part.usage };
            break;
          case 'finish':
            finishReason = part.reason;
            break;
        }
        if (writer.ended) break;
      }
      await writer.flush();
      if (writer.ended) {
        log.warn('generation ended elsewhere; this run stops');
        return 'ended';
      }
      if (usage) {
        const { promptTokens, completionTokens } = usage;
        const totalTokens = promptTokens !== undefined && completionTokens !== undefined ? promptTokens + completionTokens : undefined;
        writer.append({ type: 'usage', promptTokens, completionTokens, totalTokens });
        await writer.flush();
      }
      log.info({ tokens, durationMs: Math.round(performance.now() - startedAt), finishReason }, 'stream completed');
      await this.end(id, { type: 'done', finishReason }, log);
      return 'ended';
    } catch (error) {
      await writer.flush().catch(() => undefined);
      if (writer.ended) return 'ended';
      if (signal.aborted && signal.reason === HAND_BACK) {
        log.info({ tokens }, 'stream closed early: handed back to the queue');
        return 'handed-back';
      }
      if (signal.aborted) {
        log.info({ tokens }, 'stream closed early: cancelled');
        await this.end(id, { type: 'cancelled', reason: reasonText(signal.reason) }, log);
      } else if (error instanceof UpstreamError) {
        log.warn({ tokens, code: error.code, status: error.status, err: error.message }, 'stream closed early: upstream error');
        await this.end(id, { type: 'error', code: error.code, message: error.message, status: error.status, retryable: error.retryable }, log);
      } else {
        log.error({ err: error }, 'generation failed');
        await this.end(id, { type: 'error', code: 'internal_error', message: 'the worker failed while running the generation' }, log);
      }
      return 'ended';
    }
  }

  /** Writes the terminal event, retrying through a short Redis outage: a stream must not stay open forever. */
  private async end(id: string, body: TerminalEventBody, log: Logger): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const seq = await this.eventLog.appendTerminal(id, body);
        if (seq === undefined) log.info({ terminal: body.type }, 'terminal event already written; not writing another');
        return;
      } catch (error) {
        if (attempt >= TERMINAL_WRITE_ATTEMPTS) throw error;
        log.warn({ err: (error as Error).message, attempt }, 'cannot write the terminal event yet; retrying');
        await sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
  }
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' ? reason : 'cancelled';
}
