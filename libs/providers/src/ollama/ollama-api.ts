import { z } from 'zod';

/** One NDJSON line of Ollama's `POST /api/chat` stream. */
export const ollamaChatLineSchema = z.union([
  z.object({ error: z.string() }),
  z.object({
    message: z.object({ role: z.string().optional(), content: z.string().default('') }).optional(),
    done: z.boolean(),
    done_reason: z.string().optional(),
    prompt_eval_count: z.number().int().optional(),
    eval_count: z.number().int().optional(),
  }),
]);

/** `GET /api/tags`. */
export const ollamaTagsSchema = z.object({ models: z.array(z.object({ name: z.string() })) });
