import type { ProviderChunk, ProviderFinishReason, ProviderRequest } from '../provider';
import type { OpenAIChunk } from './openai-compatible-api';

export function mapFinishReason(raw: string): ProviderFinishReason {
  switch (raw) {
    case 'length':
      return 'length';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    case 'content_filter':
      return 'content_filter';
    default:
      return 'stop';
  }
}

export function* mapOpenAIChunk(chunk: OpenAIChunk): Generator<ProviderChunk> {
  for (const choice of chunk.choices) {
    const delta = choice.delta;
    if (delta?.content) yield { type: 'text-delta', text: delta.content };
    for (const call of delta?.tool_calls ?? []) {
      yield {
        type: 'tool-call-delta',
        index: call.index,
        id: call.id ?? undefined,
        name: call.function?.name ?? undefined,
        arguments: call.function?.arguments ?? undefined,
      };
    }
    if (choice.finish_reason) {
      const reason = mapFinishReason(choice.finish_reason);
      // OpenAI says only "stop"; vLLM also names the stop string that matched.
      const stopSequence = reason === 'stop' && typeof choice.stop_reason === 'string' ? choice.stop_reason : undefined;
      yield { type: 'finish', reason, raw: choice.finish_reason, ...(stopSequence !== undefined ? { stopSequence } : {}) };
    }
  }
  if (chunk.usage) {
    yield {
      type: 'usage',
      usage: {
        promptTokens: chunk.usage.prompt_tokens ?? undefined,
        completionTokens: chunk.usage.completion_tokens ?? undefined,
      },
    };
  }
}

/** The upstream request body: OpenAI's own shape, always streaming. */
export function mapOpenAIRequest(request: ProviderRequest, includeUsage: boolean): Record<string, unknown> {
  const p = request.params;
  const body: Record<string, unknown> = {
    model: request.model,
    messages: request.messages,
    stream: true,
    temperature: p.temperature,
    top_p: p.topP,
    max_tokens: p.maxTokens,
    stop: p.stop,
    presence_penalty: p.presencePenalty,
    frequency_penalty: p.frequencyPenalty,
    seed: p.seed,
    tools: p.tools,
    tool_choice: p.toolChoice,
  };
  if (includeUsage) body.stream_options = { include_usage: true };
  return body;
}
