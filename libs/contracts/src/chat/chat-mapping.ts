import type { ChatCompletionRequest } from './chat-request.schema';
import type { GenerationParams } from '../generations/generation-job.schema';
import type { CreateGenerationRequest } from '../generations/generation-request.schema';

/** The provider-neutral parameters of a chat request. */
export function toGenerationParams(request: CreateGenerationRequest | ChatCompletionRequest): GenerationParams {
  const stop = request.stop == null ? undefined : Array.isArray(request.stop) ? request.stop : [request.stop];
  return {
    temperature: request.temperature ?? undefined,
    topP: request.top_p ?? undefined,
    maxTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
    stop,
    presencePenalty: request.presence_penalty ?? undefined,
    frequencyPenalty: request.frequency_penalty ?? undefined,
    seed: request.seed ?? undefined,
    tools: request.tools,
    toolChoice: request.tool_choice,
  };
}

export interface ToolCallParts {
  id?: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * Adds one streamed tool-call delta to the calls so far (by its index): the id once, name and
 * arguments appended. Every whole-reply view (non-streaming routes, batch results) folds with it.
 */
export function mergeToolCallDelta(calls: ToolCallParts[], delta: { index: number; id?: string; name?: string; arguments?: string }): void {
  const target = (calls[delta.index] ??= { type: 'function', function: { name: '', arguments: '' } });
  if (delta.id) target.id = delta.id;
  if (delta.name) target.function.name += delta.name;
  if (delta.arguments) target.function.arguments += delta.arguments;
}

export interface CompletionParts {
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
  text: string;
  toolCalls?: ToolCallParts[];
  finishReason?: string;
  /** The stop sequence that ended the reply, when known: the choice's `stop_reason`, as vLLM names it. */
  stopSequence?: string;
  usage?: { promptTokens?: number; completionTokens?: number; totalTokens?: number };
}

/** OpenAI's non-streaming `chat.completion` object. */
export function chatCompletionObject(parts: CompletionParts) {
  return {
    id: parts.id,
    object: 'chat.completion' as const,
    created: parts.created,
    model: parts.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant' as const,
          content: parts.text === '' && parts.toolCalls ? null : parts.text,
          ...(parts.toolCalls ? { tool_calls: parts.toolCalls } : {}),
        },
        finish_reason: parts.finishReason ?? 'stop',
        ...(parts.stopSequence !== undefined ? { stop_reason: parts.stopSequence } : {}),
        logprobs: null,
      },
    ],
    ...(parts.usage
      ? {
          usage: {
            prompt_tokens: parts.usage.promptTokens ?? 0,
            completion_tokens: parts.usage.completionTokens ?? 0,
            total_tokens: parts.usage.totalTokens ?? (parts.usage.promptTokens ?? 0) + (parts.usage.completionTokens ?? 0),
          },
        }
      : {}),
  };
}
