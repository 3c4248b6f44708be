import { z } from 'zod';

/** A tool call in an Ollama reply: arguments are an object, not a JSON string; newer versions add an id. */
export const ollamaToolCallSchema = z.object({
  id: z.string().optional(),
  function: z.object({ index: z.number().int().optional(), name: z.string(), arguments: z.unknown().optional() }),
});

/** One NDJSON line of Ollama's `POST /api/chat` stream. Unknown fields are ignored, as Ollama adds them. */
export const ollamaChatLineSchema = z.union([
  z.object({ error: z.string() }),
  z.object({
    message: z
      .object({ role: z.string().optional(), content: z.string().default(''), tool_calls: z.array(ollamaToolCallSchema).nullish() })
      .optional(),
    done: z.boolean(),
    done_reason: z.string().optional(),
    prompt_eval_count: z.number().int().optional(),
    eval_count: z.number().int().optional(),
  }),
]);

/** `GET /api/tags`. */
export const ollamaTagsSchema = z.object({ models: z.array(z.object({ name: z.string() })) });
