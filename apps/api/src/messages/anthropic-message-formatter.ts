import {
  anthropicStopReason,
  type AnthropicMessageResponse,
  type AnthropicStreamEvent,
  type ChunkEvent,
  type FinishReason,
  type StreamEvent,
} from '@tokenwire/contracts';
import { anthropicErrorBody, httpStatusForError } from '../common/api-error';
import type { GenerationSummary } from '../generations/generation-summary';

/**
 * One generation as Anthropic's Messages API answers it. Streaming: `message_start`, then per
 * content block `content_block_start`, deltas (`text_delta` / `input_json_delta`) and
 * `content_block_stop` (a `ping` after the first block starts, as Anthropic sends it), then
 * `message_delta` with `stop_reason` and usage, `message_stop`; or `event: error`.
 */
export class AnthropicMessageFormatter {
  private blockIndex = -1;
  private openBlock?: { kind: 'text' } | { kind: 'tool_use'; call: number };
  private readonly toolBlocks = new Map<number, number>();
  private usage: { input?: number; output?: number } = {};

  constructor(
    readonly id: string,
    readonly model: string,
  ) {}

  start(): string {
    return frame({
      type: 'message_start',
      message: { id: this.id, type: 'message', role: 'assistant', model: this.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } },
    });
  }

  /** The frames one generation event becomes ('' for none). */
  event(event: StreamEvent): string {
    switch (event.type) {
      case 'chunk':
        return this.chunk(event);
      case 'usage':
        this.usage = { input: event.promptTokens, output: event.completionTokens };
        return '';
      case 'done':
        return (
          this.closeBlock() +
          frame({
            type: 'message_delta',
            delta: { stop_reason: anthropicStopReason(event.finishReason, event.stopSequence), stop_sequence: stoppedBy(event.finishReason, event.stopSequence) },
            usage: { output_tokens: this.usage.output ?? 0, ...(this.usage.input !== undefined ? { input_tokens: this.usage.input } : {}) },
          }) +
          frame({ type: 'message_stop' })
        );
      case 'error':
        return frame(anthropicErrorBody(httpStatusForError(event), event.message));
      case 'cancelled':
        return frame(anthropicErrorBody(409, `the generation was cancelled: ${event.reason ?? ''}`.trim()));
      case 'restarted':
        // An Anthropic client cannot take back text it already has: fail rather than send a spliced reply.
        return frame(anthropicErrorBody(502, 'the worker running this generation failed mid-stream'));
    }
  }

  private chunk(event: ChunkEvent): string {
    let out = '';
    if (event.delta) {
      if (this.openBlock?.kind !== 'text') out += this.startBlock({ type: 'text', text: '' }, { kind: 'text' });
      out += frame({ type: 'content_block_delta', index: this.blockIndex, delta: { type: 'text_delta', text: event.delta } });
    }
    for (const call of event.toolCalls ?? []) {
      let index = this.toolBlocks.get(call.index);
      if (index === undefined) {
        out += this.startBlock({ type: 'tool_use', id: call.id ?? `toolu_${this.id}_${call.index}`, name: call.name ?? '', input: {} }, { kind: 'tool_use', call: call.index });
        index = this.blockIndex;
        this.toolBlocks.set(call.index, index);
      }
      if (call.arguments) out += frame({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: call.arguments } });
    }
    return out;
  }

  private startBlock(block: Extract<AnthropicStreamEvent, { type: 'content_block_start' }>['content_block'], open: NonNullable<typeof this.openBlock>): string {
    const out = this.closeBlock() + frame({ type: 'content_block_start', index: ++this.blockIndex, content_block: block });
    this.openBlock = open;
    return this.blockIndex === 0 ? out + frame({ type: 'ping' }) : out;
  }

  private closeBlock(): string {
    if (!this.openBlock) return '';
    this.openBlock = undefined;
    return frame({ type: 'content_block_stop', index: this.blockIndex });
  }

  /** The non-streaming `message` object. */
  message(summary: GenerationSummary): AnthropicMessageResponse {
    const content: AnthropicMessageResponse['content'] = summary.text ? [{ type: 'text', text: summary.text }] : [];
    for (const call of summary.toolCalls ?? []) {
      content.push({ type: 'tool_use', id: call.id ?? `toolu_${this.id}_${content.length}`, name: call.function.name, input: parseToolInput(call.function.arguments) });
    }
    return {
      id: this.id,
      type: 'message',
      role: 'assistant',
      model: this.model,
      content,
      stop_reason: anthropicStopReason(summary.finishReason, summary.stopSequence),
      stop_sequence: stoppedBy(summary.finishReason, summary.stopSequence),
      usage: { input_tokens: summary.usage?.promptTokens ?? 0, output_tokens: summary.usage?.completionTokens ?? 0 },
    };
  }
}

/** Anthropic's `stop_sequence`: the sequence when one ended the reply, else null. */
function stoppedBy(reason: FinishReason | undefined, stopSequence: string | undefined): string | null {
  return reason === 'stop' && stopSequence !== undefined ? stopSequence : null;
}

function frame(event: AnthropicStreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** A tool call's JSON arguments as Anthropic's `input` object; text that is not a JSON object is kept under `_raw`. */
function parseToolInput(args: string): Record<string, unknown> {
  if (!args.trim()) return {};
  try {
    const value: unknown = JSON.parse(args);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // not JSON: kept as text below
  }
  return { _raw: args };
}
