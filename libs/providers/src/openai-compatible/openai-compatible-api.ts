import { z } from 'zod';

/** The upstream wire format: one `data:` frame of an OpenAI chat-completions stream. */
export const openAIChunkSchema = z.object({
  id: z.string().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().int().optional(),
        delta: z
          .object({
            role: z.string().nullish(),
            content: z.string().nullish(),
            tool_calls: z
              .array(
                z.object({
                  index: z.number().int(),
                  id: z.string().nullish(),
                  function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
                }),
              )
              .nullish(),
          })
          .nullish(),
        finish_reason: z.string().nullish(),
        /** vLLM's extension: the stop string that matched (a number for a stop token id; null at EOS). */
        stop_reason: z.union([z.string(), z.number()]).nullish(),
      }),
    )
    .default([]),
  usage: z
    .object({ prompt_tokens: z.number().int().nullish(), completion_tokens: z.number().int().nullish() })
    .nullish(),
});
export type OpenAIChunk = z.infer<typeof openAIChunkSchema>;

/** An error object sent inside the stream (`data: {"error": {...}}`). */
export const openAIStreamErrorSchema = z.object({
  error: z.object({ message: z.string().optional(), type: z.string().nullish(), code: z.unknown().optional(), param: z.string().nullish() }),
});
