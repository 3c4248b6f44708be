import { z } from 'zod';

/** Messages on the workers' control channel. */
export const controlMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cancel'), generationId: z.string().min(1), reason: z.string().optional() }),
]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;
