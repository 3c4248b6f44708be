/** `GET /v1/usage`: the calling tenant's token counts per model since the counters began. */
export interface UsageReport {
  object: 'usage';
  tenantId: string;
  models: Record<string, { requests: number; promptTokens: number; completionTokens: number }>;
}
