import type { ChatCompletionRequest, ChatMessage } from '../chat/chat-request.schema';
import type { ResponsesInputItem, ResponsesRequest } from './responses-request.schema';

type UserPart = Extract<ChatMessage, { role: 'user' }>['content'] extends infer C ? (C extends Array<infer P> ? P : never) : never;

/**
 * Responses input items as chat messages: messages keep their role (`developer` stays
 * `developer`), consecutive `function_call` items become one assistant message's `tool_calls`,
 * each `function_call_output` a `tool` message. A string input is one user message.
 */
export function responsesInputToMessages(input: ResponsesRequest['input']): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  const messages: ChatMessage[] = [];
  for (const item of input) {
    if (item.type === 'function_call') {
      const call = { id: item.call_id, type: 'function' as const, function: { name: item.name, arguments: item.arguments } };
      const last = messages[messages.length - 1];
      if (last?.role === 'assistant' && (last.tool_calls?.length || !last.content)) (last.tool_calls ??= []).push(call);
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (item.type === 'function_call_output') {
      const output = typeof item.output === 'string' ? item.output : item.output.flatMap((part) => (part.type === 'input_text' ? [part.text] : [])).join('');
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: output });
    } else messages.push(messageItem(item));
  }
  return messages;
}

function messageItem(item: Extract<ResponsesInputItem, { role: string }>): ChatMessage {
  if (typeof item.content === 'string') return { role: item.role, content: item.content };
  const text = (part: (typeof item.content)[number]) => (part.type === 'input_text' || part.type === 'output_text' ? part.text : part.type === 'refusal' ? part.refusal : '');
  if (item.role !== 'user') return { role: item.role, content: item.content.map(text).join('') };
  const parts: UserPart[] = item.content.map((part) =>
    part.type === 'input_image' ? { type: 'image_url', image_url: { url: part.image_url, ...(part.detail ? { detail: part.detail } : {}) } } : { type: 'text', text: text(part) },
  );
  return { role: 'user', content: parts.every((part) => part.type === 'text') ? parts.map((part) => part.text).join('') : parts };
}

/** A Responses request as the chat request a generation runs: `messages` is the conversation (previous turns, then `input`); `instructions` lead as a system message. */
export function responsesToChatRequest(body: ResponsesRequest, messages: ChatMessage[] = responsesInputToMessages(body.input)): ChatCompletionRequest {
  return {
    model: body.model,
    messages: body.instructions ? [{ role: 'system', content: body.instructions }, ...messages] : messages,
    max_tokens: body.max_output_tokens ?? undefined,
    temperature: body.temperature,
    top_p: body.top_p,
    user: body.user,
    tools: body.tools?.map((tool) => ({
      type: 'function' as const,
      function: { name: tool.name, description: tool.description ?? undefined, parameters: tool.parameters ?? undefined, strict: tool.strict },
    })),
    tool_choice: typeof body.tool_choice === 'object' ? { type: 'function', function: { name: body.tool_choice.name } } : body.tool_choice,
  };
}
