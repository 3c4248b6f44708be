import type { ChatMessage, GenerationParams } from '@tokenwire/contracts';

/**
 * Provider spec v1 (modelled on the Vercel AI SDK's LanguageModel spec).
 * A provider turns one request into one stream of parts. It knows nothing of
 * Nest, queues, Redis, tenants or clients, so it can be tested alone against
 * a real protocol server and reused outside the gateway.
 */
export const PROVIDER_SPEC_VERSION = 'v1';

export interface ProviderRequest {
  /** The model name as the upstream knows it. */
  model: string;
  messages: ChatMessage[];
  params: GenerationParams;
}

export interface ProviderUsage {
  /** Unknown counts are `undefined`, never 0. */
  promptTokens?: number;
  completionTokens?: number;
}

export type ProviderFinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export type ProviderChunk =
  | { type: 'text-delta'; text: string }
  | { type: 'tool-call-delta'; index: number; id?: string; name?: string; arguments?: string }
  | { type: 'usage'; usage: ProviderUsage }
  | { type: 'finish'; reason: ProviderFinishReason; raw?: string };

export interface ProviderCapabilities {
  streaming: true;
  tools: boolean;
  usage: boolean;
}

export interface StreamOptions {
  /** Aborting must close the upstream connection promptly. */
  signal: AbortSignal;
}

export interface LanguageModelProvider {
  readonly specVersion: typeof PROVIDER_SPEC_VERSION;
  /** Provider type, e.g. `openai-compatible`. */
  readonly id: string;
  readonly capabilities: ProviderCapabilities;
  /**
   * Throws (from the iterator) `UpstreamError` subclasses, or the signal's
   * abort reason once `signal` is aborted.
   */
  stream(request: ProviderRequest, options: StreamOptions): AsyncIterable<ProviderChunk>;
}
