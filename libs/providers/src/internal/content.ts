import type { ChatMessage } from '@tokenwire/contracts';

/** A message's text: the string, or its text parts joined (images dropped). */
export function contentText(content: ChatMessage['content']): string {
  if (content == null) return '';
  return typeof content === 'string' ? content : content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}

/** A plain-text prompt for completion-style upstreams (TGI, Triton). */
export function chatTranscript(messages: ChatMessage[], format: 'transcript' | 'last-user'): string {
  if (format === 'last-user') return contentText([...messages].reverse().find((m) => m.role === 'user')?.content ?? '');
  return `${messages.map((m) => `${m.role}: ${contentText(m.content)}`).join('\n')}\nassistant:`;
}
