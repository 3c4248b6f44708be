import type { ChatMessage } from '@tokenwire/contracts';
import { contentText, imageBase64, parseToolArguments, toolChoice } from '../internal/content';
import type { ProviderRequest } from '../provider';

/** One chat message in Ollama's shape: text content, images as base64, tool calls with object arguments. */
function ollamaMessage(message: ChatMessage, toolNames: Map<string, string>): Record<string, unknown> {
  const role = message.role === 'developer' ? 'system' : message.role;
  if (message.role === 'tool') {
    return { role, content: contentText(message.content), ...(toolNames.has(message.tool_call_id) ? { tool_name: toolNames.get(message.tool_call_id) } : {}) };
  }
  if (message.role === 'assistant' && message.tool_calls?.length) {
    for (const call of message.tool_calls) toolNames.set(call.id, call.function.name);
    return {
      role,
      content: contentText(message.content),
      tool_calls: message.tool_calls.map((call) => ({ function: { name: call.function.name, arguments: parseToolArguments(call.function.arguments) } })),
    };
  }
  if (message.role === 'user' && Array.isArray(message.content)) {
    const images = message.content.flatMap((part) => (part.type === 'image_url' ? [imageBase64(part.image_url.url, 'ollama').data] : []));
    return { role, content: contentText(message.content.filter((part) => part.type === 'text')), ...(images.length ? { images } : {}) };
  }
  return { role, content: contentText(message.content) };
}

/** The body of `POST /api/chat`. Ollama cannot force a tool; `tool_choice: "none"` sends no tools. */
export function mapOllamaRequest(request: ProviderRequest, keepAlive?: string): Record<string, unknown> {
  const p = request.params;
  const toolNames = new Map<string, string>();
  const tools = toolChoice(p.toolChoice)?.type === 'none' ? undefined : p.tools;
  return {
    model: request.model,
    stream: true,
    messages: request.messages.map((m) => ollamaMessage(m, toolNames)),
    ...(tools?.length ? { tools } : {}),
    options: {
      temperature: p.temperature,
      top_p: p.topP,
      num_predict: p.maxTokens,
      stop: p.stop,
      seed: p.seed,
      presence_penalty: p.presencePenalty,
      frequency_penalty: p.frequencyPenalty,
    },
    ...(keepAlive ? { keep_alive: keepAlive } : {}),
  };
}
