import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { estimatePromptTokens, type GenerationJob, type TerminalEventBody } from '@tokenwire/contracts';
import {
  EventLog,
  GenerationFinisher,
  LOGGER,
  LostGenerationNotice,
  TOKENWIRE_CONFIG,
  TokenwireMetrics,
  type GenerationUsage,
  type Logger,
  type TokenwireConfig,
} from '@tokenwire/core';
import { UpstreamError, followAbort, type ProviderFinishReason, type ProviderUsage } from '@tokenwire/providers';
import { UpstreamRouterService } from '../upstream/upstream-router.service';
import { GenerationEventWriter, boundedPieces, type WriteRefusal } from './generation-event-writer';

/** Abort reason used at shutdown: the job goes back to the queue instead of ending. */
export const HAND_BACK = 'worker shutting down: handing the job back';
/** Abort reason when BullMQ could not renew this worker's lock: another worker may be running the job. */
export const LOST_LOCK = 'worker lost the job lock: another worker may run the job';

/** `lost`: another run owns the generation now; this one wrote nothing more. */
export type RunOutcome = 'ended' | 'handed-back' | 'lost';

/** What one run has received from the upstream so far. */
interface RunProgress {
  tokens: number;
  usage?: ProviderUsage;
  finishReason: ProviderFinishReason;
  stopSequence?: string;
}

/** One run of one generation: what `endAfter` needs to pick the terminal event. */
interface ActiveRun {
  job: GenerationJob;
  runToken: string;
  signal: AbortSignal;
  writer: GenerationEventWriter;
  progress: RunProgress;
  log: Logger;
}

@Injectable()
export class GenerationRunnerService {
  constructor(
    private readonly router: UpstreamRouterService,
    private readonly eventLog: EventLog,
    private readonly finisher: GenerationFinisher,
    private readonly lostNotice: LostGenerationNotice,
    private readonly metrics: TokenwireMetrics,
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
    // Every run claims the generation before the upstream call; an older run's writes are refused from then on.
    const runToken = randomUUID();
    const claim = await this.eventLog.claimRun(id, runToken);
    if (claim.kind === 'ended') {
      log.info('generation already ended; this delivery of its job does nothing');
      return 'ended';
    }
    if (claim.kind === 'cancel-requested') {
      await this.finisher.finish({ id, tenantId: job.tenantId, model: job.model }, { type: 'cancelled', reason: 'cancelled before start' });
      return 'ended';
    }
    // The upstream call stops on a cancel (the job's signal) or when this run stops owning the generation.
    const ownership = new AbortController();
    const unfollow = followAbort(signal, ownership);
    const writer = new GenerationEventWriter(
      this.eventLog,
      id,
      runToken,
      claim.lastSeq,
      this.config.worker.coalesce,
      () => ownership.abort(new Error('this run no longer owns the generation')),
      log,
    );
    if (claim.lastSeq > 0) {
      // A recovered job re-runs from the start: clients drop the partial text (see README, "Crash recovery").
      writer.append({ type: 'restarted', fromSeq: claim.lastSeq + 1 });
      log.warn({ fromSeq: claim.lastSeq + 1 }, 'generation restarted after a previous attempt stopped');
    }
    const run: ActiveRun = { job, runToken, signal, writer, progress: { tokens: 0, finishReason: 'stop' }, log };
    this.metrics.queueWait.observe({ model: job.model }, Math.max(0, Date.now() - job.createdAt) / 1000);
    this.metrics.runningGenerations.inc();
    const startedAt = performance.now();
    try {
      await this.pump(run, ownership.signal, startedAt);
      await writer.flush();
      if (writer.refused) return await this.stopped(run, writer.refused);
      const { tokens, finishReason, stopSequence } = run.progress;
      const counted = countUsage(job, run.progress);
      writer.append({ type: 'usage', ...counted, totalTokens: counted.promptTokens + counted.completionTokens });
      await writer.flush();
      if (writer.refused) return await this.stopped(run, writer.refused);
      log.info({ tokens, durationMs: Math.round(performance.now() - startedAt), finishReason }, 'stream completed');
      await this.end(run, { type: 'done', finishReason, ...(stopSequence !== undefined ? { stopSequence } : {}) }, counted);
      this.metrics.generations.inc({ model: job.model, outcome: 'done' });
      return 'ended';
    } catch (error) {
      return await this.endAfter(error, run);
    } finally {
      unfollow();
      this.metrics.runningGenerations.dec();
    }
  }

  /** Reads the upstream into the writer until it ends, fails, or the run stops owning the generation. */
  private async pump(run: ActiveRun, upstreamSignal: AbortSignal, startedAt: number): Promise<void> {
    const { job, writer, progress, log } = run;
    const metrics = this.metrics;
    // Label children bound once per job: a token then costs no label hashing.
    const interToken = metrics.interToken.labels(job.model);
    const tokenCounter = metrics.tokens.labels(job.model);
    let lastTokenAt = 0;
    const stream = this.router.stream(job.model, { messages: job.messages, params: job.params }, upstreamSignal, log, job.generationId, {
      tenantId: job.tenantId,
      sessionKey: job.routingKey,
    });
    for await (const part of stream) {
      switch (part.type) {
        case 'text-delta': {
          const now = performance.now();
          if (progress.tokens++ === 0) {
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
          progress.usage = { ...progress.usage, ...part.usage };
          break;
        case 'finish':
          progress.finishReason = part.reason;
          progress.stopSequence = part.stopSequence;
          break;
      }
      if (writer.refused) return;
      const caughtUp = writer.backpressure();
      if (caughtUp) await caughtUp;
    }
  }

  /** The one place a failed or stopped run picks its ending: nothing, a hand-back, `cancelled` or `error`. */
  private async endAfter(error: unknown, run: ActiveRun): Promise<RunOutcome> {
    const { job, signal, writer, progress, log } = run;
    await writer.flush().catch(() => undefined);
    if (writer.refused) return await this.stopped(run, writer.refused);
    if (signal.aborted && signal.reason === LOST_LOCK) return await this.stopped(run, 'lost');
    if (signal.aborted && signal.reason === HAND_BACK) {
      log.info({ tokens: progress.tokens }, 'stream closed early: handed back to the queue');
      this.metrics.generations.inc({ model: job.model, outcome: 'handed_back' });
      return 'handed-back';
    }
    this.metrics.generations.inc({ model: job.model, outcome: signal.aborted ? 'cancelled' : 'error' });
    if (signal.aborted) {
      log.info({ tokens: progress.tokens }, 'stream closed early: cancelled');
      await this.end(run, { type: 'cancelled', reason: reasonText(signal.reason) }, countUsage(job, progress));
    } else if (error instanceof UpstreamError) {
      log.warn({ tokens: progress.tokens, code: error.code, status: error.status, err: error.message }, 'stream closed early: upstream error');
      await this.end(run, { type: 'error', ...error.toGatewayError() }, countUsage(job, progress));
    } else {
      log.error({ err: writer.writeFailure ?? error }, 'generation failed');
      await this.end(run, { type: 'error', code: 'internal_error', message: 'the worker failed while running the generation' });
    }
    return 'ended';
  }

  /**
   * Redis refused this run's writes: the generation ended elsewhere, or its meta no longer names this run:
   * another run owns it now, or its state is gone from Redis (then its live readers are told, at once).
   */
  private async stopped(run: ActiveRun, refusal: WriteRefusal): Promise<RunOutcome> {
    this.metrics.generations.inc({ model: run.job.model, outcome: refusal === 'lost' ? 'lost' : 'ended_elsewhere' });
    if (refusal === 'ended') {
      run.log.warn('generation ended elsewhere; this run stops');
      return 'ended';
    }
    if (await this.releaseIfGone(run)) run.log.error({ tokens: run.progress.tokens }, 'the generation is gone from Redis (meta and terminal marker missing); its readers were told; this run stops');
    else run.log.warn({ tokens: run.progress.tokens }, 'this run lost the generation to another; it stops and writes nothing more');
    return 'lost';
  }

  /** Tells the readers of a generation whose state is gone (if it is) and frees its tenant slot; true when gone. */
  private async releaseIfGone(run: ActiveRun): Promise<boolean> {
    const { job, log } = run;
    try {
      if (!(await this.lostNotice.announceIfGone(job.generationId, run.writer.lastWrittenSeq + 1))) return false;
      await this.finisher.releaseLost({ id: job.generationId, tenantId: job.tenantId });
      return true;
    } catch (error) {
      log.warn({ err: error }, 'cannot tell whether the generation is gone from Redis; its readers learn it at their next check');
      return false;
    }
  }

  /** Writes the terminal event; when it is refused because the generation's state is gone, says so as stopped() would. */
  private async end(run: ActiveRun, body: TerminalEventBody, usage?: GenerationUsage): Promise<boolean> {
    const { job, runToken } = run;
    const wrote = await this.finisher.finish({ id: job.generationId, tenantId: job.tenantId, model: job.model, runToken }, body, usage);
    if (!wrote && (await this.releaseIfGone(run))) run.log.error({ terminal: body.type }, 'the generation is gone from Redis before its terminal event; its readers were told');
    return wrote;
  }
}

/**
 * Usage as the upstream reported it; what it left out is counted: completion tokens
 * as text deltas received, prompt tokens estimated at 4 characters per token.
 */
function countUsage(job: GenerationJob, { usage, tokens }: RunProgress): GenerationUsage {
  return {
    promptTokens: usage?.promptTokens ?? estimatePromptTokens(job.messages),
    completionTokens: usage?.completionTokens ?? tokens,
  };
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' ? reason : 'cancelled';
}
