import type { ChunkEvent, ResponseObject, ResponseOutputItem, ResponseStatus, ResponseStreamEvent, StreamEvent } from '@tokenwire/contracts';
import type { StoredResponse } from './stored-response';

type Emitted = ResponseStreamEvent;
type MessageItem = Extract<ResponseOutputItem, { type: 'message' }>;
type CallItem = Extract<ResponseOutputItem, { type: 'function_call' }>;
/** An event as built, before it is numbered. */
type Unnumbered = Emitted extends infer E ? (E extends Emitted ? Omit<E, 'sequence_number'> : never) : never;

/**
 * One generation as the Responses API: its events become Responses stream events, and the
 * object (`GET /v1/responses/{id}`) is the snapshot of the same fold. The fold is a pure
 * function of the generation's event log, so replaying the log from seq 1 gives every event
 * the same `sequence_number` again: resuming after `starting_after=N` is a replay that skips
 * numbers up to N. A worker restart mid-reply fails the response (its client cannot take back text).
 */
export class ResponseEventFormatter {
  private sequence = 0;
  private readonly output: ResponseOutputItem[] = [];
  /** Output index of the item receiving deltas. */
  private open?: number;
  /** Tool-call index of the generation → output index. */
  private readonly calls = new Map<number, number>();
  private status: ResponseStatus;
  private error: ResponseObject['error'] = null;
  private incomplete: ResponseObject['incomplete_details'] = null;
  private usage: ResponseObject['usage'] = null;
  private ended = false;

  constructor(
    private readonly record: StoredResponse,
    /** Before any event: `queued` or `in_progress`. */
    initialStatus: ResponseStatus = 'in_progress',
  ) {
    this.status = initialStatus;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** `response.created` and `response.in_progress`. */
  start(): Emitted[] {
    const created = this.emit({ type: 'response.created', response: this.snapshot(this.record.background ? 'queued' : 'in_progress') });
    this.status = 'in_progress';
    return [created, this.emit({ type: 'response.in_progress', response: this.snapshot() })];
  }

  /** The Responses events one generation event becomes. */
  event(event: StreamEvent): Emitted[] {
    if (this.ended) return [];
    switch (event.type) {
      case 'chunk':
        return this.chunk(event);
      case 'usage': {
        const input = event.promptTokens ?? 0;
        const output = event.completionTokens ?? 0;
        this.usage = { input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: event.totalTokens ?? input + output };
        return [];
      }
      case 'done': {
        const cut = event.finishReason === 'length' ? 'max_output_tokens' : event.finishReason === 'content_filter' ? 'content_filter' : undefined;
        const closed = this.closeOpen(cut ? 'incomplete' : 'completed');
        this.ended = true;
        this.status = cut ? 'incomplete' : 'completed';
        if (cut) this.incomplete = { reason: cut };
        return [...closed, this.emit({ type: cut ? 'response.incomplete' : 'response.completed', response: this.snapshot() })];
      }
      case 'error':
        return this.fail('failed', { code: event.code, message: event.message });
      case 'cancelled':
        return this.fail('cancelled', null);
      case 'restarted':
        return this.fail('failed', { code: 'upstream_closed', message: 'the worker running this generation failed mid-stream' });
    }
  }

  /** The `response` object as of the events folded so far. */
  snapshot(status: ResponseStatus = this.status): ResponseObject {
    const r = this.record;
    return {
      id: r.id,
      object: 'response',
      created_at: r.createdAt,
      status,
      background: r.background,
      store: r.store,
      model: r.model,
      instructions: r.instructions,
      previous_response_id: r.previousResponseId,
      output: structuredClone(this.output),
      error: this.error,
      incomplete_details: this.incomplete,
      usage: this.usage,
      tools: r.tools,
      tool_choice: r.toolChoice,
      parallel_tool_calls: r.parallelToolCalls,
      temperature: r.temperature,
      top_p: r.topP,
      max_output_tokens: r.maxOutputTokens,
      metadata: r.metadata,
      text: { format: { type: 'text' } },
      truncation: 'disabled',
    };
  }

  private chunk(event: ChunkEvent): Emitted[] {
    const out: Emitted[] = [];
    if (event.delta) {
      let index = this.open;
      if (index === undefined || this.output[index]!.type !== 'message') {
        out.push(...this.closeOpen('completed'));
        index = this.output.length;
        const item: MessageItem = { type: 'message', id: `msg_${this.record.generationId}_${index}`, status: 'in_progress', role: 'assistant', content: [] };
        this.output.push(item);
        this.open = index;
        out.push(this.emit({ type: 'response.output_item.added', output_index: index, item: structuredClone(item) }));
        const part = { type: 'output_text' as const, text: '', annotations: [], logprobs: [] };
        item.content.push(part);
        out.push(this.emit({ type: 'response.content_part.added', item_id: item.id, output_index: index, content_index: 0, part: structuredClone(part) }));
      }
      const item = this.output[index] as MessageItem;
      item.content[0]!.text += event.delta;
      out.push(this.emit({ type: 'response.output_text.delta', item_id: item.id, output_index: index, content_index: 0, delta: event.delta, logprobs: [] }));
    }
    for (const call of event.toolCalls ?? []) {
      let index = this.calls.get(call.index);
      if (index === undefined) {
        out.push(...this.closeOpen('completed'));
        index = this.output.length;
        const item: CallItem = {
          type: 'function_call',
          id: `fc_${this.record.generationId}_${index}`,
          call_id: call.id ?? `call_${this.record.generationId}_${call.index}`,
          name: call.name ?? '',
          arguments: '',
          status: 'in_progress',
        };
        this.output.push(item);
        this.calls.set(call.index, index);
        this.open = index;
        out.push(this.emit({ type: 'response.output_item.added', output_index: index, item: structuredClone(item) }));
      }
      const item = this.output[index] as CallItem;
      if (call.arguments) {
        item.arguments += call.arguments;
        out.push(this.emit({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: call.arguments }));
      }
    }
    return out;
  }

  /** Ends the item receiving deltas, with its `…done` events. */
  private closeOpen(status: 'completed' | 'incomplete'): Emitted[] {
    const index = this.open;
    if (index === undefined) return [];
    this.open = undefined;
    const item = this.output[index]!;
    const out: Emitted[] = [];
    if (item.type === 'message') {
      const part = item.content[0]!;
      out.push(this.emit({ type: 'response.output_text.done', item_id: item.id, output_index: index, content_index: 0, text: part.text, logprobs: [] }));
      out.push(this.emit({ type: 'response.content_part.done', item_id: item.id, output_index: index, content_index: 0, part: structuredClone(part) }));
    } else {
      out.push(this.emit({ type: 'response.function_call_arguments.done', item_id: item.id, output_index: index, name: item.name, arguments: item.arguments }));
    }
    item.status = status;
    out.push(this.emit({ type: 'response.output_item.done', output_index: index, item: structuredClone(item) }));
    return out;
  }

  private fail(status: 'failed' | 'cancelled', error: ResponseObject['error']): Emitted[] {
    this.ended = true;
    this.open = undefined;
    this.status = status;
    this.error = error;
    return [this.emit({ type: 'response.failed', response: this.snapshot() })];
  }

  private emit(event: Unnumbered): Emitted {
    return { ...event, sequence_number: this.sequence++ } as Emitted;
  }
}

/** One Responses event as an SSE frame (`event:` equals `data.type`). */
export function responseFrame(event: ResponseStreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
