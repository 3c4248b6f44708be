import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { responsesInputToMessages, responsesToChatRequest, type ChatMessage, type RedisKeys, type ResponseObject, type ResponsesRequest } from '@tokenwire/contracts';
import { EventLog, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, finishedTtlSeconds, type GenerationMeta, type TokenwireConfig } from '@tokenwire/core';
import { ApiError, echo } from '../common/api-error';
import { GenerationsService, type CreateOptions } from '../generations/generations.service';
import { summarizeEvents } from '../generations/generation-summary';
import { ResponseEventFormatter } from './response-event-formatter';
import type { StoredResponse } from './stored-response';

const RESPONSE_PREFIX = 'resp_';

/**
 * Responses-API responses over generations: the request becomes a chat request on the same queue;
 * the response (its request and the conversation so far) is kept in Redis under the tenant as long as
 * the generation's event log, from which every view is folded, can be: `generations.ttlSeconds` for the
 * run, then `generations.finishedTtlSeconds`. A stored response whose generation has expired is a 404,
 * never an empty `in_progress` one. `previous_response_id` continues that conversation: its messages,
 * then its output, then the new input.
 */
@Injectable()
export class ResponsesService {
  constructor(
    private readonly generations: GenerationsService,
    private readonly eventLog: EventLog,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  /** `response`: the HTTP response, for the rate-limit headers (GenerationsService.create). */
  async create(tenantId: string, body: ResponsesRequest, response?: CreateOptions['response']): Promise<StoredResponse> {
    const store = body.store ?? true;
    const background = body.background ?? false;
    if (background && !store) throw new ApiError(400, 'invalid_request', 'background responses must be stored: drop store: false', 'store');
    const previous = body.previous_response_id ? await this.previousConversation(tenantId, body.previous_response_id) : [];
    const messages = [...previous, ...responsesInputToMessages(body.input)];
    const request = responsesToChatRequest(body, messages);
    const { id: generationId, createdAt } = await this.generations.create(tenantId, request, { response });
    const record: StoredResponse = {
      id: `${RESPONSE_PREFIX}${generationId}`,
      generationId,
      tenantId,
      model: body.model,
      createdAt: Math.floor(createdAt / 1000),
      background,
      store,
      instructions: body.instructions ?? null,
      previousResponseId: body.previous_response_id ?? null,
      messages,
      tools: body.tools ?? [],
      toolChoice: body.tool_choice ?? 'auto',
      parallelToolCalls: body.parallel_tool_calls ?? true,
      temperature: body.temperature ?? null,
      topP: body.top_p ?? null,
      maxOutputTokens: body.max_output_tokens ?? null,
      metadata: body.metadata ?? {},
    };
    if (store) await this.redis.set(this.keys.response(tenantId, record.id), JSON.stringify(record), 'EX', this.config.generations.ttlSeconds + finishedTtlSeconds(this.config));
    return record;
  }

  /**
   * The stored response and its generation's meta as read now, or 404: also for another tenant's, one created
   * with `store: false`, and one whose generation has expired (its record may outlive the log: a run's length
   * is not known when it is stored).
   */
  async require(tenantId: string, id: string): Promise<{ record: StoredResponse; meta: GenerationMeta }> {
    const json = id.startsWith(RESPONSE_PREFIX) ? await this.redis.get(this.keys.response(tenantId, id)) : null;
    const record = json ? (JSON.parse(json) as StoredResponse) : undefined;
    const meta = record && (await this.generations.find(tenantId, record.generationId));
    if (!record || !meta) throw new ApiError(404, 'not_found', `no response with id ${echo(id)} (unknown, expired, or created with store: false)`, 'response_id');
    return { record, meta };
  }

  /** The response object folded from its generation's event log; `meta`: the generation's, when just read. */
  async view(record: StoredResponse, meta?: GenerationMeta): Promise<ResponseObject> {
    meta ??= await this.generations.find(record.tenantId, record.generationId);
    const format = new ResponseEventFormatter(record, meta?.status === 'queued' ? 'queued' : 'in_progress');
    for (const { event } of await this.eventLog.readAfter(record.generationId, 0)) format.event(event);
    return format.snapshot();
  }

  /** The sequence number of the last Responses event the generation's log folds into so far. */
  async lastSequence(record: StoredResponse): Promise<number> {
    const format = new ResponseEventFormatter(record);
    let last = format.start().at(-1)!.sequence_number;
    for (const { event } of await this.eventLog.readAfter(record.generationId, 0)) last = format.event(event).at(-1)?.sequence_number ?? last;
    return last;
  }

  /** Cancels a background response; answers it once it has ended (or as it is after `waitMs`). */
  async cancel(tenantId: string, id: string, waitMs = 5_000): Promise<ResponseObject> {
    const { record } = await this.require(tenantId, id);
    if (!record.background) throw new ApiError(400, 'invalid_request', 'only responses created with background: true can be cancelled', 'response_id');
    await this.generations.cancel(tenantId, record.generationId, 'cancelled by request').catch((error: unknown) => {
      if (!(error instanceof ApiError && error.code === 'already_ended')) throw error;
    });
    const deadline = Date.now() + waitMs;
    let view = await this.view(record);
    while (!ENDED.has(view.status) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      view = await this.view(record);
    }
    return view;
  }

  async delete(tenantId: string, id: string): Promise<{ id: string; object: 'response'; deleted: true }> {
    await this.require(tenantId, id);
    await this.redis.del(this.keys.response(tenantId, id));
    return { id, object: 'response', deleted: true };
  }

  /** The previous response's conversation followed by its reply, for `previous_response_id`. */
  private async previousConversation(tenantId: string, id: string): Promise<ChatMessage[]> {
    const { record } = await this.require(tenantId, id).catch(() => {
      throw new ApiError(404, 'not_found', `previous response ${echo(id)} was not found (unknown, expired, or created with store: false)`, 'previous_response_id');
    });
    const summary = summarizeEvents((await this.eventLog.readAfter(record.generationId, 0)).map((logged) => logged.event));
    if (!summary.finishReason) throw new ApiError(400, 'invalid_request', `previous response ${echo(id)} has not completed`, 'previous_response_id');
    const reply: ChatMessage = { role: 'assistant', content: summary.text || (summary.toolCalls ? null : ''), ...(summary.toolCalls ? { tool_calls: summary.toolCalls.map((call, i) => ({ ...call, id: call.id ?? `call_${record.generationId}_${i}` })) } : {}) };
    return [...record.messages, reply];
  }
}

const ENDED: ReadonlySet<ResponseObject['status']> = new Set(['completed', 'failed', 'cancelled', 'incomplete']);
