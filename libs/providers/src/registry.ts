import { z } from 'zod';
import { DemoProvider } from './demo/demo.provider';
import { OpenAICompatibleProvider } from './openai-compatible/openai-compatible.provider';
import { OllamaProvider } from './ollama/ollama.provider';
import { AnthropicProvider } from './anthropic/anthropic.provider';
import { WebSocketProvider } from './websocket/websocket.provider';
import { GrpcProvider } from './grpc/grpc.provider';
import { loadProviderPlugin } from './plugin/plugin-loader';
import { TritonProvider } from './triton/triton.provider';
import { OpenAIResponsesWsProvider } from './responses/openai-responses-ws.provider';
import { TgiProvider } from './tgi/tgi.provider';
import type { LanguageModelProvider } from './provider';
import { requestRefusal, type RequestRefusal } from './capabilities';
import type { ChatMessage, GenerationParams } from '@tokenwire/contracts';

/** One entry of the `models` config: a public model name routed to a provider. */
export const modelConfigSchema = z.object({
  /** The name clients send as `model`. */
  name: z.string().min(1),
  /** Provider type, a key of the registry's factories (`demo`, `openai-compatible`, …). */
  provider: z.string().min(1),
  /** The model name the upstream expects; defaults to `name`. */
  upstreamModel: z.string().min(1).optional(),
  /** Provider-specific options, validated by the provider's own schema. */
  options: z.record(z.string(), z.unknown()).default({}),
});
export type ModelConfig = z.output<typeof modelConfigSchema>;

export type ProviderFactory = (options: Record<string, unknown>) => LanguageModelProvider;

export const builtInProviderFactories: Readonly<Record<string, ProviderFactory>> = {
  demo: (options) => new DemoProvider(options),
  'openai-compatible': (options) => new OpenAICompatibleProvider(options as never),
  ollama: (options) => new OllamaProvider(options as never),
  anthropic: (options) => new AnthropicProvider(options as never),
  websocket: (options) => new WebSocketProvider(options as never),
  grpc: (options) => new GrpcProvider(options as never),
  plugin: (options) => loadProviderPlugin(options),
  triton: (options) => new TritonProvider(options as never),
  'openai-responses-ws': (options) => new OpenAIResponsesWsProvider(options as never),
  tgi: (options) => new TgiProvider(options as never),
};

export interface ResolvedModel {
  config: ModelConfig;
  provider: LanguageModelProvider;
  upstreamModel: string;
}

/** Maps configured model names to provider instances, built once at start-up. */
export class ProviderRegistry {
  private readonly models = new Map<string, ResolvedModel>();

  constructor(models: ModelConfig[], factories: Readonly<Record<string, ProviderFactory>> = builtInProviderFactories) {
    for (const config of models) {
      if (this.models.has(config.name)) throw new Error(`models: "${config.name}" is configured twice`);
      const factory = factories[config.provider];
      if (!factory) {
        throw new Error(
          `models.${config.name}.provider: unknown provider "${config.provider}" (known: ${Object.keys(factories).join(', ')})`,
        );
      }
      let provider: LanguageModelProvider;
      try {
        provider = factory(config.options);
      } catch (error) {
        const detail = error instanceof z.ZodError ? z.prettifyError(error) : (error as Error).message;
        throw new Error(`models.${config.name}.options: ${detail}`);
      }
      this.models.set(config.name, { config, provider, upstreamModel: config.upstreamModel ?? config.name });
    }
  }

  resolve(name: string): ResolvedModel | undefined {
    return this.models.get(name);
  }

  /** Why the model's provider cannot carry this request (tools, a content part, a parameter), or undefined. */
  refusal(name: string, request: { messages: ChatMessage[]; params: GenerationParams }): RequestRefusal | undefined {
    const resolved = this.models.get(name);
    return resolved && requestRefusal(name, resolved.provider.id, resolved.provider.capabilities, request);
  }

  names(): string[] {
    return [...this.models.keys()];
  }
}
