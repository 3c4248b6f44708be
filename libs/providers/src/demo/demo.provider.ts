import { setTimeout as sleep } from 'node:timers/promises';
import type { ChatMessage } from '@tokenwire/contracts';
import { z } from 'zod';
import {
  PROVIDER_SPEC_VERSION,
  type LanguageModelProvider,
  type ProviderChunk,
  type ProviderRequest,
  type StreamOptions,
} from '../provider';
import { contentText } from '../internal/content';

export const demoProviderOptionsSchema = z.object({
  /** Pause before each token, so a newcomer sees the stream. 0 streams as fast as possible. */
  tokenDelayMs: z.number().min(0).default(25),
  /** Extra pause before the first token (a model "thinking"). */
  firstTokenDelayMs: z.number().min(0).default(0),
  /** Reply length in tokens when `reply` is not set. */
  tokens: z.number().int().positive().default(40),
  /** Fixed reply text; by default the reply is derived from the last user message. */
  reply: z.string().optional(),
});
export type DemoProviderOptions = z.input<typeof demoProviderOptionsSchema>;

const FILLER =
  'Tokenwire streams every token from the worker through Redis to your client as soon as it exists. ' +
  'This reply comes from the built-in demo provider, which needs no model server.';

/** No network: a deterministic reply at a configurable pace. */
export class DemoProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'demo';
  readonly capabilities = { streaming: true, tools: false, usage: true, images: 'none' } as const;
  private readonly options: z.output<typeof demoProviderOptionsSchema>;

  constructor(options: DemoProviderOptions = {}) {
    this.options = demoProviderOptionsSchema.parse(options);
  }

  /** The tokens the demo model answers with; exported for tests that check the full text. */
  replyTokens(messages: ChatMessage[]): string[] {
    if (this.options.reply !== undefined) return splitTokens(this.options.reply);
    const lastUser = [...messages].reverse().find((m) => m.role === 'user');
    const prompt = lastUser ? contentText(lastUser.content).trim() : '';
    // Punctuation stays on its word (a token is a word with its leading space), so the reply reads as text.
    const said = prompt ? (/[.!?]$/.test(prompt) ? prompt : `${prompt}.`) : '(nothing).';
    const words = `You said: ${said} ${FILLER}`.split(/\s+/).filter(Boolean);
    const tokens: string[] = [];
    for (let i = 0; tokens.length < this.options.tokens; i++) tokens.push((i === 0 ? '' : ' ') + words[i % words.length]);
    return tokens;
  }

  async *stream(request: ProviderRequest, { signal }: StreamOptions): AsyncIterable<ProviderChunk> {
    const reply = this.replyTokens(request.messages);
    const limit = request.params.maxTokens ?? Number.POSITIVE_INFINITY;
    // The demo model honours stop sequences as a model server does: the reply ends before the first match.
    const { tokens, stopSequence } = cutAtStop(reply.slice(0, Math.min(reply.length, limit)), request.params.stop);
    const count = tokens.length;
    if (this.options.firstTokenDelayMs > 0) await sleep(this.options.firstTokenDelayMs, undefined, { signal });
    for (let i = 0; i < count; i++) {
      if (this.options.tokenDelayMs > 0) await sleep(this.options.tokenDelayMs, undefined, { signal });
      else if (i % 64 === 0) await sleep(0, undefined, { signal }); // yield so a cancel can land
      signal.throwIfAborted();
      yield { type: 'text-delta', text: tokens[i]! };
    }
    yield { type: 'usage', usage: { promptTokens: countPromptTokens(request.messages), completionTokens: count } };
    if (stopSequence !== undefined) yield { type: 'finish', reason: 'stop', raw: 'stop_sequence', stopSequence };
    else yield { type: 'finish', reason: count < reply.length ? 'length' : 'stop' };
  }
}

/** The tokens before the earliest stop sequence (the token it starts in cut short), and which one matched. */
function cutAtStop(tokens: string[], stops: readonly string[] | undefined): { tokens: string[]; stopSequence?: string } {
  const text = tokens.join('');
  let at = -1;
  let stopSequence: string | undefined;
  for (const stop of stops ?? []) {
    const index = stop ? text.indexOf(stop) : -1;
    if (index >= 0 && (at < 0 || index < at)) [at, stopSequence] = [index, stop];
  }
  if (stopSequence === undefined) return { tokens };
  const kept: string[] = [];
  let length = 0;
  for (const token of tokens) {
    if (length + token.length > at) {
      if (at > length) kept.push(token.slice(0, at - length));
      break;
    }
    kept.push(token);
    length += token.length;
  }
  return { tokens: kept, stopSequence };
}

function splitTokens(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

function countPromptTokens(messages: ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + splitTokens(contentText(m.content)).length, 0);
}
