import { z } from 'zod';
import { gatewayErrorSchema } from '../errors/error.schema';

/**
 * Every event of a generation carries a `seq` that increases by one per event,
 * starting at 1. The Redis Stream entry id is `<seq>-0`, so replay is XRANGE by seq.
 */
const base = { jobId: z.string(), seq: z.number().int().positive() };

export const toolCallDeltaSchema = z.object({
  index: z.number().int().min(0),
  id: z.string().optional(),
  name: z.string().optional(),
  arguments: z.string().optional(),
});
export type ToolCallDelta = z.infer<typeof toolCallDeltaSchema>;

export const chunkEventSchema = z.object({
  ...base,
  type: z.literal('chunk'),
  delta: z.string(),
  toolCalls: z.array(toolCallDeltaSchema).optional(),
});
export const usageEventSchema = z.object({
  ...base,
  type: z.literal('usage'),
  promptTokens: z.number().int().min(0).optional(),
  completionTokens: z.number().int().min(0).optional(),
  totalTokens: z.number().int().min(0).optional(),
});
export const finishReasonSchema = z.enum(['stop', 'length', 'tool_calls', 'content_filter']);
export type FinishReason = z.infer<typeof finishReasonSchema>;
/**
 * The stop sequence that ended the reply, when the provider says which (finishReason is then `stop`).
 * A field beside `stop` rather than a finish reason of its own: every view that only knows "stop"
 * (OpenAI chat, Responses, an api process of the previous release reading this event) stays right.
 */
export const stopSequenceSchema = z.string();
export const doneEventSchema = z.object({ ...base, type: z.literal('done'), finishReason: finishReasonSchema, stopSequence: stopSequenceSchema.optional() });
/** An error ends the generation; its fields are the one error shape (GatewayError). */
export const errorEventSchema = z.object({
  ...base,
  type: z.literal('error'),
  ...gatewayErrorSchema.shape,
});
export const cancelledEventSchema = z.object({ ...base, type: z.literal('cancelled'), reason: z.string().optional() });
/** A recovered job re-runs: clients drop all text from events with seq < `seq`. */
export const restartedEventSchema = z.object({ ...base, type: z.literal('restarted'), fromSeq: z.number().int().min(0) });

export const streamEventSchema = z.discriminatedUnion('type', [
  chunkEventSchema,
  usageEventSchema,
  doneEventSchema,
  errorEventSchema,
  cancelledEventSchema,
  restartedEventSchema,
]);
export type StreamEvent = z.infer<typeof streamEventSchema>;
export type ChunkEvent = z.infer<typeof chunkEventSchema>;
export type UsageEvent = z.infer<typeof usageEventSchema>;
export type DoneEvent = z.infer<typeof doneEventSchema>;
export type ErrorEvent = z.infer<typeof errorEventSchema>;
export type CancelledEvent = z.infer<typeof cancelledEventSchema>;
export type RestartedEvent = z.infer<typeof restartedEventSchema>;
export type TerminalEvent = DoneEvent | ErrorEvent | CancelledEvent;
export type StreamEventType = StreamEvent['type'];

/** Event payloads without the fields the event log assigns. */
export type StreamEventBody = StreamEvent extends infer E ? (E extends StreamEvent ? Omit<E, 'jobId' | 'seq'> : never) : never;
export type TerminalEventBody = Extract<StreamEventBody, { type: 'done' | 'error' | 'cancelled' }>;

export const TERMINAL_EVENT_TYPES: ReadonlySet<StreamEventType> = new Set(['done', 'error', 'cancelled']);
export function isTerminalEvent(event: StreamEvent): event is TerminalEvent {
  return TERMINAL_EVENT_TYPES.has(event.type);
}
