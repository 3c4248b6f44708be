import { z } from 'zod';

/** `GET /v1/usage`: the calling tenant's token counts per model since the counters began. */
export const usageReportSchema = z.object({
  object: z.literal('usage'),
  tenantId: z.string(),
  models: z.record(z.string(), z.object({ requests: z.number().int(), promptTokens: z.number().int(), completionTokens: z.number().int() })),
});
export type UsageReport = z.infer<typeof usageReportSchema>;
