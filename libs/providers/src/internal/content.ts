import type { ChatMessage } from '@tokenwire/contracts';

/** A message's text: the string, or its text parts joined (images dropped). */
export function contentText(content: ChatMessage['content']): string {
  if (content == null) return '';
  return typeof content === 'string' ? content : content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}
