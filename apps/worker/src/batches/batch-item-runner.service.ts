import { Inject, Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { chatCompletionObject, mergeToolCallDelta, toGenerationParams, type BatchItemJob, type BatchOutputLine, type ToolCallParts } from '@tokenwire/contracts';
import { BatchStore, LOGGER, TOKENWIRE_CONFIG, TenantAccounting, limitsFor, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { UpstreamError, type ProviderUsage } from '@tokenwire/providers';
import { UpstreamRouterService } from '../upstream/upstream-router.service';
import { WorkerBatchFeeder } from './worker-batch-feeder.service';

/**
 * Runs one batch item: the request through the same upstream router as interactive
 * generations (retries, fallback, breaker, stall), the whole reply collected, the
 * result recorded once, and the slot it frees filled with the batch's next items.
 */
@Injectable()
export class BatchItemRunnerService {
  constructor(
    private readonly router: UpstreamRouterService,
    private readonly store: BatchStore,
    private readonly feeder: WorkerBatchFeeder,
    private readonly accounting: TenantAccounting,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async run(job: Job, item: BatchItemJob, signal: AbortSignal): Promise<void> {
    const { batchId, index, tenantId } = item;
    const log = this.logger.child({ jobId: job.id, batchId, index, tenantId });
    // A job run again after its item was recorded (a worker died after recording, the sweep re-added it): nothing to do.
    if (await this.store.hasResult(batchId, index)) return;
    const line = await this.store.item(batchId, index);
    if (!line) return; // the batch expired
    const { body } = line;
    let text = '';
    const toolCalls: ToolCallParts[] = [];
    let usage: ProviderUsage | undefined;
    let finishReason = 'stop';
    let stopSequence: string | undefined;
    let outcome: BatchOutputLine;
    let counted: { promptTokens: number; completionTokens: number } | undefined;
    try {
      const stream = this.router.stream(body.model, { messages: body.messages, params: toGenerationParams(body) }, signal, log, String(job.id), {
        tenantId,
        sessionKey: body.prompt_cache_key ?? body.user,
      });
      for await (const chunk of stream) {
        if (chunk.type === 'text-delta') text += chunk.text;
        else if (chunk.type === 'tool-call-delta') mergeToolCallDelta(toolCalls, chunk);
        else if (chunk.type === 'usage') usage = { ...usage, ...chunk.usage };
        else if (chunk.type === 'finish') [finishReason, stopSequence] = [chunk.reason, chunk.stopSequence];
      }
      counted = { promptTokens: usage?.promptTokens ?? 0, completionTokens: usage?.completionTokens ?? 0 };
      outcome = {
        id: `batch_req_${index}`,
        custom_id: line.custom_id,
        response: {
          status_code: 200,
          body: chatCompletionObject({
            id: `chatcmpl-${batchId}-${index}`,
            model: body.model,
            created: Math.floor(Date.now() / 1000),
            text,
            // As the chat route answers: the calls (none lost to a gap in the indexes), finish_reason tool_calls.
            ...(toolCalls.length ? { toolCalls: toolCalls.filter(Boolean) } : {}),
            finishReason,
            ...(stopSequence !== undefined ? { stopSequence } : {}),
            usage: counted,
          }),
        },
        error: null,
      };
    } catch (error) {
      if (signal.aborted) throw error; // shutdown or cancel: BullMQ decides (hand-back re-runs it)
      const attemptsLeft = (job.opts.attempts ?? 1) - job.attemptsMade - 1;
      if (error instanceof UpstreamError && error.retryable && attemptsLeft > 0) {
        log.warn({ code: error.code, attemptsLeft }, 'batch item failed; the queue retries it');
        throw error;
      }
      const code = error instanceof UpstreamError ? error.code : 'internal_error';
      if (!(error instanceof UpstreamError)) log.error({ err: error }, 'batch item failed');
      outcome = { id: `batch_req_${index}`, custom_id: line.custom_id, response: null, error: { code, message: (error as Error).message } };
    }
    // Recording frees the item's slot and takes the next items in one step; if this process dies before
    // their jobs are added, the recovery sweep adds them. A Redis error here fails the attempt (the queue retries it).
    const { recorded, taken } = await this.store.record(batchId, index, outcome);
    await this.feeder.enqueue(batchId, tenantId, taken);
    if (recorded && counted) await this.accounting.recordFinished(tenantId, String(job.id), body.model, counted, limitsFor(this.config, tenantId).tokensPerMinute);
  }
}
