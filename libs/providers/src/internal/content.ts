import type { ChatMessage } from '@tokenwire/contracts';
import { UnsupportedRequestError } from '../errors';

/**
 * A message's text for a text-only upstream: the string, or its text parts joined with a newline
 * (parts are separate paragraphs, not one run-on word). Non-text parts never reach here: the api
 * refuses them for text-only providers.
 */
export function contentText(content: ChatMessage['content']): string {
  if (content == null) return '';
  return typeof content === 'string' ? content : content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
}

/** A plain-text prompt for completion-style upstreams (TGI, Triton). */
export function chatTranscript(messages: ChatMessage[], format: 'transcript' | 'last-user'): string {
  if (format === 'last-user') return contentText([...messages].reverse().find((m) => m.role === 'user')?.content ?? '');
  return `${messages.map((m) => `${m.role}: ${contentText(m.content)}`).join('\n')}\nassistant:`;
}

/** The parts of a `data:<media type>;base64,<data>` URL, or undefined for any other URL. */
export function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([^;,]+)?((?:;[^;,]+)*);base64,(.*)$/s.exec(url);
  return match ? { mediaType: match[1] ?? 'application/octet-stream', data: match[3]! } : undefined;
}

/** An image URL an upstream can only take as base64: the data, or the worker's guard error. */
export function imageBase64(url: string, provider: string): { mediaType: string; data: string } {
  const parsed = parseDataUrl(url);
  if (!parsed) throw new UnsupportedRequestError(`${provider} takes images only as base64 data: URLs`, 'messages');
  return parsed;
}

/** Tool-call arguments (a JSON string on the OpenAI wire) as the object some upstreams want; `{}` when empty. */
export function parseToolArguments(json: string): unknown {
  if (!json.trim()) return {};
  try {
    return JSON.parse(json);
  } catch {
    throw new UnsupportedRequestError(`tool call arguments are not JSON: ${json.slice(0, 100)}`, 'messages');
  }
}

/** OpenAI's tool_choice as a small union the mappers switch on. */
export type ToolChoice = { type: 'auto' } | { type: 'none' } | { type: 'required' } | { type: 'function'; name: string } | undefined;

export function toolChoice(raw: unknown): ToolChoice {
  if (raw === 'auto' || raw === 'none' || raw === 'required') return { type: raw };
  const name = (raw as { function?: { name?: unknown } } | null)?.function?.name;
  if (typeof name === 'string') return { type: 'function', name };
  return undefined;
}
