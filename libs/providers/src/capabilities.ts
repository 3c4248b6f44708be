import type { ChatMessage, GenerationParams } from '@tokenwire/contracts';
import type { ProviderCapabilities, SamplingParam } from './provider';
import { toolChoice } from './internal/content';

/** The request field each sampling parameter comes from (the OpenAI request's names). */
export const SAMPLING_PARAM_FIELDS: Readonly<Record<SamplingParam, string>> = {
  temperature: 'temperature',
  topP: 'top_p',
  maxTokens: 'max_tokens',
  stop: 'stop',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  seed: 'seed',
};

export interface RequestRefusal {
  message: string;
  /** The request field at fault, e.g. `tools`, `top_p`, `messages[0].content[1]`. */
  param: string;
}

/**
 * Why a provider cannot carry a request faithfully (tools, a content part, a parameter or
 * its value), or undefined when it can. The api answers 400 with this before enqueueing,
 * so nothing is dropped silently on the way to the upstream.
 */
export function requestRefusal(
  model: string,
  providerId: string,
  capabilities: ProviderCapabilities,
  request: { messages: ChatMessage[]; params: GenerationParams },
): RequestRefusal | undefined {
  const who = `model '${model}' (provider ${providerId})`;
  const { params } = request;
  if (params.tools?.length && !capabilities.tools) {
    return { param: 'tools', message: `${who} cannot call tools; send the request without tools, or use a model whose provider can` };
  }
  const choice = toolChoice(params.toolChoice);
  if (params.tools?.length && (choice?.type === 'required' || choice?.type === 'function') && !(capabilities.forcedToolChoice ?? capabilities.tools)) {
    return { param: 'tool_choice', message: `${who} cannot force a tool call; tool_choice may be "auto" or "none"` };
  }
  const images = capabilities.images ?? 'none';
  for (const [m, message] of request.messages.entries()) {
    if (!Array.isArray(message.content)) continue;
    for (const [p, part] of (message.content as Array<{ type: string; image_url?: { url: string } }>).entries()) {
      if (part.type === 'text') continue;
      const param = `messages[${m}].content[${p}]`;
      if (part.type !== 'image_url' || images === 'none') {
        return { param, message: `${param}: ${who} takes text only; it cannot carry a ${part.type} part` };
      }
      if (images === 'data-url' && !part.image_url?.url.startsWith('data:')) {
        return { param, message: `${param}: ${who} takes image_url parts only as base64 data: URLs, not links` };
      }
    }
  }
  if (capabilities.params) {
    for (const [name, field] of Object.entries(SAMPLING_PARAM_FIELDS) as Array<[SamplingParam, string]>) {
      const value = params[name];
      if (value === undefined) continue;
      const accepted = capabilities.params[name];
      if (!accepted) {
        const supported = Object.keys(capabilities.params).map((key) => SAMPLING_PARAM_FIELDS[key as SamplingParam]);
        return { param: field, message: `${who} has no ${field}; it takes ${supported.join(', ') || 'no sampling parameters'}` };
      }
      if (accepted !== true && typeof value === 'number') {
        if ((accepted.min !== undefined && value < accepted.min) || (accepted.max !== undefined && value > accepted.max)) {
          return { param: field, message: `${who} takes ${field} from ${accepted.min ?? '-∞'} to ${accepted.max ?? '∞'}, not ${value}` };
        }
      }
    }
  }
  return undefined;
}
