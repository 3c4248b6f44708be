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
  /**
   * `stopSequence`: which of the request's stop sequences ended the reply (with reason `stop`), only
   * when the upstream says so (Anthropic, vLLM's `stop_reason`) or the provider can tell for sure.
   */
  | { type: 'finish'; reason: ProviderFinishReason; raw?: string; stopSequence?: string };

/** The sampling fields of GenerationParams a provider may map. */
export type SamplingParam = 'temperature' | 'topP' | 'maxTokens' | 'stop' | 'presencePenalty' | 'frequencyPenalty' | 'seed';

/** Inclusive bounds of a numeric parameter the upstream accepts. */
export interface ParamRange {
  min?: number;
  max?: number;
}

export interface ProviderCapabilities {
  streaming: true;
  /** Function tools round-trip (request `tools`, tool-call deltas back). A request with tools to a provider without them is refused. */
  tools: boolean;
  /** Whether `tool_choice` may force a tool (`required` or a named function); absent: as `tools`. */
  forcedToolChoice?: boolean;
  usage: boolean;
  /** `image_url` content parts: `url` (data: and https: URLs), `data-url` (data: only) or `none` (text only); absent: `none`. */
  images?: 'url' | 'data-url' | 'none';
  /**
   * The sampling parameters the provider maps to its upstream, each with the range it accepts
   * (`true`: the request schema's range). A request with any other is refused. Absent: all accepted.
   */
  params?: Partial<Record<SamplingParam, true | ParamRange>>;
}

/** Where a provider may log what it skips (e.g. an unknown event type); pino's signature. */
export interface ProviderLogger {
  debug(details: Record<string, unknown>, message: string): void;
}

export interface StreamOptions {
  /** Aborting must close the upstream connection promptly. */
  signal: AbortSignal;
  log?: ProviderLogger;
  /**
   * Called whenever the upstream shows it is alive without necessarily sending a part: any bytes read,
   * a keep-alive (SSE comment, Anthropic `ping`, an empty frame), a WebSocket ping or message, a gRPC
   * response. The stall timeout (withStallTimeout) counts these as life. Called per read on the hot
   * path, so it must be cheap (withStallTimeout's only sets a flag).
   */
  heartbeat?: () => void;
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
