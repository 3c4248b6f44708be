import { mergeToolCallDelta, type FinishReason, type GatewayError, type StreamEvent, type ToolCallParts } from '@tokenwire/contracts';

export type ToolCallSummary = ToolCallParts;

export interface GenerationSummary {
  text: string;
  toolCalls?: ToolCallSummary[];
  finishReason?: FinishReason;
  /** The stop sequence that ended the reply, when the provider said which. */
  stopSequence?: string;
  usage?: { promptTokens?: number; completionTokens?: number; totalTokens?: number };
  error?: GatewayError;
  /** Seq of the last event seen. */
  lastSeq: number;
}

/** Folds a generation's events into its result. Text before a `restarted` event is dropped. */
export function summarizeEvents(events: Iterable<StreamEvent>): GenerationSummary {
  let text = '';
  const toolCalls: ToolCallSummary[] = [];
  const summary: GenerationSummary = { text: '', lastSeq: 0 };
  for (const event of events) {
    summary.lastSeq = event.seq;
    switch (event.type) {
      case 'chunk':
        text += event.delta;
        for (const call of event.toolCalls ?? []) mergeToolCallDelta(toolCalls, call);
        break;
      case 'restarted':
        text = '';
        toolCalls.length = 0;
        break;
      case 'usage':
        summary.usage = { promptTokens: event.promptTokens, completionTokens: event.completionTokens, totalTokens: event.totalTokens };
        break;
      case 'done':
        summary.finishReason = event.finishReason;
        if (event.stopSequence !== undefined) summary.stopSequence = event.stopSequence;
        break;
      case 'error':
        {
          const { type: _type, jobId: _jobId, seq: _seq, ...error } = event;
          summary.error = error;
        }
        break;
      case 'cancelled':
        break;
    }
  }
  summary.text = text;
  if (toolCalls.length) summary.toolCalls = toolCalls.filter(Boolean);
  return summary;
}

/** Why a generation that ended did not succeed (its error, or a cancel as a conflict); undefined when it succeeded. */
export function endingError(events: StreamEvent[], summary: GenerationSummary): GatewayError | undefined {
  if (summary.error) return summary.error;
  const last = events[events.length - 1];
  if (last?.type === 'cancelled') return { code: 'conflict', status: 409, message: `the generation was cancelled: ${last.reason ?? ''}`.trim() };
  return undefined;
}
