import { z } from 'zod';
import { chatCompletionRequestSchema } from '../chat/chat-request.schema';

/** `POST /v1/generations`: the chat request without the transport-level `stream` switches. */
export const createGenerationRequestSchema = chatCompletionRequestSchema.omit({ stream: true, stream_options: true });
export type CreateGenerationRequest = z.infer<typeof createGenerationRequestSchema>;

export const conversationIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'conversation ids are 1-128 letters, digits, _ . : -');

/** Socket.IO `generate` payload; with `conversationId`, every member of that room receives the stream. */
export const socketGenerateRequestSchema = createGenerationRequestSchema.extend({
  conversationId: conversationIdSchema.optional(),
  /** A display name the room shows beside the prompt (chosen by the member, not an identity). */
  author: z.string().trim().min(1, 'author: 1-40 characters').max(40, 'author: 1-40 characters').optional(),
});
export type SocketGenerateRequest = z.infer<typeof socketGenerateRequestSchema>;

/** Socket.IO `join` / `leave` payload: a conversation room within the caller's tenant. */
export const roomRequestSchema = z.object({ conversationId: conversationIdSchema });
export type RoomRequest = z.infer<typeof roomRequestSchema>;

/** Socket.IO `subscribe` payload: replay everything after `afterSeq`, then live. */
export const subscribeRequestSchema = z.object({
  jobId: z.string().min(1),
  /** A non-negative integer seq (a JSON number; strings such as '5' or '1e3' are refused). */
  afterSeq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
});
export type SubscribeRequest = z.infer<typeof subscribeRequestSchema>;

export const cancelRequestSchema = z.object({ jobId: z.string().min(1) });
export type CancelRequest = z.infer<typeof cancelRequestSchema>;
