import type { BucketState, TenantLimits } from '@tokenwire/core';

/**
 * OpenAI's rate-limit headers, so SDKs and dashboards that read them work: the limit per minute,
 * what is left, and when the bucket is full again (`1s`, `6m0s`, `20ms`, as OpenAI writes it).
 */
export function rateLimitHeaders(limits: TenantLimits, requests: BucketState, tokens: BucketState): Record<string, string> {
  return {
    'x-ratelimit-limit-requests': String(limits.requestsPerMinute),
    'x-ratelimit-remaining-requests': String(requests.remaining),
    'x-ratelimit-reset-requests': openAIDuration(requests.resetMs),
    'x-ratelimit-limit-tokens': String(limits.tokensPerMinute),
    'x-ratelimit-remaining-tokens': String(tokens.remaining),
    'x-ratelimit-reset-tokens': openAIDuration(tokens.resetMs),
  };
}

function openAIDuration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const seconds = Math.ceil(ms / 1000);
  const minutes = Math.floor(seconds / 60);
  return minutes ? `${minutes}m${seconds % 60}s` : `${seconds}s`;
}
