import type { BatchEndpoint, ChunkEvent, FinishReason, StreamEvent } from '@tokenwire/contracts';
import { AnthropicMessageFormatter } from '../messages/anthropic-message-formatter';
import { ResponseEventFormatter } from '../responses/response-event-formatter';

/** A batch item's result as the worker records it: a `chat.completion`. */
export interface ChatCompletionBody {
  id: string;
  model: string;
  created: number;
  choices: Array<{ message: { content: string | null; tool_calls?: Array<{ id?: string; function: { name: string; arguments: string } }> }; finish_reason: string; stop_reason?: string }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** The generation events a completion amounts to, so each API's formatter renders it as for a live generation. */
function eventsOf(completion: ChatCompletionBody): StreamEvent[] {
  const message = completion.choices[0]?.message;
  const base = { jobId: completion.id, seq: 0 };
  const chunk: ChunkEvent = {
    ...base,
    type: 'chunk',
    delta: message?.content ?? '',
    ...(message?.tool_calls?.length ? { toolCalls: message.tool_calls.map((call, index) => ({ index, id: call.id, name: call.function.name, arguments: call.function.arguments })) } : {}),
  };
  const usage = completion.usage;
  return [
    chunk,
    ...(usage ? [{ ...base, type: 'usage' as const, promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, totalTokens: usage.total_tokens }] : []),
    { ...base, type: 'done', finishReason: (completion.choices[0]?.finish_reason ?? 'stop') as FinishReason, ...stoppedBy(completion) },
  ];
}

/** The stop sequence the worker recorded as the choice's `stop_reason`, if any. */
const stoppedBy = (completion: ChatCompletionBody): { stopSequence?: string } => {
  const stopReason = completion.choices[0]?.stop_reason;
  return typeof stopReason === 'string' ? { stopSequence: stopReason } : {};
};

const itemId = (completion: ChatCompletionBody) => completion.id.replace(/^chatcmpl-/, '');

/** Output views of batches whose endpoint is not chat completions: the result body in that API's shape. */
export const BATCH_OUTPUT_VIEWS: Partial<Record<BatchEndpoint, (completion: ChatCompletionBody) => unknown>> = {
  '/v1/messages': (completion) => {
    const format = new AnthropicMessageFormatter(`msg_${itemId(completion)}`, completion.model);
    const message = completion.choices[0]?.message;
    return format.message({
      text: message?.content ?? '',
      toolCalls: message?.tool_calls?.map((call) => ({ id: call.id, type: 'function', function: call.function })),
      finishReason: (completion.choices[0]?.finish_reason ?? 'stop') as FinishReason,
      ...stoppedBy(completion),
      usage: completion.usage && { promptTokens: completion.usage.prompt_tokens, completionTokens: completion.usage.completion_tokens },
      lastSeq: 0,
    });
  },
  '/v1/responses': (completion) => {
    const format = new ResponseEventFormatter({
      id: `resp_${itemId(completion)}`,
      generationId: itemId(completion),
      tenantId: '',
      model: completion.model,
      createdAt: completion.created,
      background: false,
      store: false,
      instructions: null,
      previousResponseId: null,
      messages: [],
      tools: [],
      toolChoice: 'auto',
      parallelToolCalls: true,
      temperature: null,
      topP: null,
      maxOutputTokens: null,
      metadata: {},
    });
    format.start();
    for (const event of eventsOf(completion)) format.event(event);
    return format.snapshot();
  },
};
