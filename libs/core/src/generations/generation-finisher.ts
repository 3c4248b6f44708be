import { setTimeout as sleep } from 'node:timers/promises';
import type { TerminalEventBody } from '@tokenwire/contracts';
import type { TokenwireConfig } from '../config/config.schema';
import { limitsFor } from '../config/config.schema';
import type { EventLog } from '../events/event-log';
import type { Logger } from '../logging/logger';
import type { GenerationUsage, TenantAccounting } from '../tenants/tenant-accounting';
import type { UnfinishedGenerations } from './unfinished-generations';

/** Attempts (over about 30 s) to write a terminal event while Redis is unreachable. */
const TERMINAL_WRITE_ATTEMPTS = 8;

export interface FinishingGeneration {
  id: string;
  tenantId: string;
  model: string;
  /** The run that claimed the generation (EventLog.claimRun); absent for a writer that claimed none. */
  runToken?: string;
}

/**
 * The one way a generation ends: the terminal event (at most once, see EventLog),
 * then, only for the writer that won, the tenant's bookkeeping (active count, usage, token bucket).
 */
export class GenerationFinisher {
  constructor(
    private readonly eventLog: EventLog,
    private readonly accounting: TenantAccounting,
    private readonly unfinished: UnfinishedGenerations,
    private readonly config: TokenwireConfig,
    private readonly logger: Logger,
  ) {}

  /** Returns true when this call wrote the terminal event. Retries through a short Redis outage. */
  async finish(generation: FinishingGeneration, body: TerminalEventBody, usage?: GenerationUsage): Promise<boolean> {
    const log = this.logger.child({ jobId: generation.id, tenantId: generation.tenantId, model: generation.model });
    for (let attempt = 1; ; attempt++) {
      try {
        const seq = await this.eventLog.appendTerminal(generation.id, body, generation.runToken);
        if (seq === undefined) {
          log.info({ terminal: body.type }, 'terminal event already written; not writing another');
          return false;
        }
        break;
      } catch (error) {
        if (attempt >= TERMINAL_WRITE_ATTEMPTS) throw error;
        log.warn({ err: (error as Error).message, attempt }, 'cannot write the terminal event yet; retrying');
        await sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
    const { tokensPerMinute } = limitsFor(this.config, generation.tenantId);
    await this.accounting
      .recordFinished(generation.tenantId, generation.id, generation.model, usage, tokensPerMinute)
      .catch((error: unknown) => log.error({ err: error }, 'cannot record usage of a finished generation'));
    await this.unfinished.remove(generation.id).catch((error: unknown) => log.warn({ err: error }, 'cannot untrack a finished generation; the reaper will'));
    return true;
  }

  /**
   * A generation whose state is gone from Redis (LostGenerationNotice) can never end through its log, and the
   * reaper cannot end it without its meta: free its tenant slot and untrack it here, or the slot stays taken
   * until it ages out (`generations.ttlSeconds`). No usage is booked: what was delivered cannot be known.
   */
  async releaseLost(generation: Pick<FinishingGeneration, 'id' | 'tenantId'>): Promise<void> {
    await Promise.all([this.accounting.removeActive(generation.tenantId, generation.id), this.unfinished.remove(generation.id)]);
  }
}
