import { z } from 'zod';
import { chatCompletionRequestSchema } from '../chat/chat-request.schema';

/** `POST /v1/generations`: the chat request without the transport-level `stream` switches. */
export const createGenerationRequestSchema = chatCompletionRequestSchema.omit({ stream: true, stream_options: true });
export type CreateGenerationRequest = z.infer<typeof createGenerationRequestSchema>;

/** Socket.IO `generate` payload. */
export const socketGenerateRequestSchema = createGenerationRequestSchema;
export type SocketGenerateRequest = CreateGenerationRequest;

/** Socket.IO `subscribe` payload: replay everything after `afterSeq`, then live. */
export const subscribeRequestSchema = z.object({
  jobId: z.string().min(1),
  afterSeq: z.number().int().min(0).default(0),
});
export type SubscribeRequest = z.infer<typeof subscribeRequestSchema>;

export const cancelRequestSchema = z.object({ jobId: z.string().min(1) });
export type CancelRequest = z.infer<typeof cancelRequestSchema>;
