import type { ChatMessage } from '@tokenwire/contracts';
import { contentText, parseDataUrl, parseToolArguments, toolChoice } from '../internal/content';
import type { ProviderRequest } from '../provider';

type Block = Record<string, unknown>;

/** A user message's parts as Anthropic content blocks: text, and images as base64 or URL sources. */
function userBlocks(content: Extract<ChatMessage, { role: 'user' }>['content']): string | Block[] {
  if (typeof content === 'string') return content;
  return content.map((part) => {
    if (part.type === 'text') return { type: 'text', text: part.text };
    const data = parseDataUrl(part.image_url.url);
    return { type: 'image', source: data ? { type: 'base64', media_type: data.mediaType, data: data.data } : { type: 'url', url: part.image_url.url } };
  });
}

/** The conversation as Anthropic turns: tool calls are `tool_use` blocks, tool results `tool_result` blocks of a user turn. */
function anthropicMessages(messages: ChatMessage[]): Array<{ role: 'user' | 'assistant'; content: string | Block[] }> {
  const turns: Array<{ role: 'user' | 'assistant'; content: string | Block[] }> = [];
  for (const message of messages) {
    switch (message.role) {
      case 'user':
        turns.push({ role: 'user', content: userBlocks(message.content) });
        break;
      case 'assistant': {
        const text = contentText(message.content);
        if (!message.tool_calls?.length) {
          turns.push({ role: 'assistant', content: text });
          break;
        }
        const calls = message.tool_calls.map((call) => ({ type: 'tool_use', id: call.id, name: call.function.name, input: parseToolArguments(call.function.arguments) }));
        turns.push({ role: 'assistant', content: [...(text ? [{ type: 'text', text }] : []), ...calls] });
        break;
      }
      case 'tool': {
        const result = { type: 'tool_result', tool_use_id: message.tool_call_id, content: contentText(message.content) };
        // Results of one assistant turn's calls go together in one user turn.
        const last = turns.at(-1);
        if (last?.role === 'user' && Array.isArray(last.content) && last.content.every((block) => block.type === 'tool_result')) last.content.push(result);
        else turns.push({ role: 'user', content: [result] });
        break;
      }
      default:
        break; // system and developer messages go to `system`
    }
  }
  return turns;
}

function anthropicToolChoice(raw: unknown): Block | undefined {
  const choice = toolChoice(raw);
  switch (choice?.type) {
    case 'auto':
    case 'none':
      return { type: choice.type };
    case 'required':
      return { type: 'any' };
    case 'function':
      return { type: 'tool', name: choice.name };
    default:
      return undefined;
  }
}

/** The body of `POST /v1/messages`. */
export function mapAnthropicRequest(request: ProviderRequest, defaultMaxTokens: number): Record<string, unknown> {
  const p = request.params;
  const system = request.messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map((m) => contentText(m.content))
    .join('\n\n');
  return {
    model: request.model,
    stream: true,
    max_tokens: p.maxTokens ?? defaultMaxTokens,
    ...(system ? { system } : {}),
    messages: anthropicMessages(request.messages),
    temperature: p.temperature,
    top_p: p.topP,
    stop_sequences: p.stop,
    tools: p.tools?.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters ?? { type: 'object' } })),
    tool_choice: p.tools?.length ? anthropicToolChoice(p.toolChoice) : undefined,
  };
}
