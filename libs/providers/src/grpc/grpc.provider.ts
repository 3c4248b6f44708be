import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { z } from 'zod';
import { UpstreamClosedError, UpstreamError, UpstreamReportedError } from '../errors';
import { contentText } from '../internal/content';
import { upstreamErrorForGrpcStatus } from '../internal/grpc-status';
import {
  PROVIDER_SPEC_VERSION,
  type LanguageModelProvider,
  type ProviderCapabilities,
  type ProviderChunk,
  type ProviderFinishReason,
  type ProviderRequest,
  type StreamOptions,
} from '../provider';

/** The built-in proto (libs/contracts/proto/generate.proto), found through the contracts package. */
export const GENERATE_PROTO_PATH = path.join(path.dirname(require.resolve('@tokenwire/contracts/package.json')), 'proto', 'generate.proto');

export const grpcOptionsSchema = z.object({
  /** host:port of the gRPC server. */
  address: z.string().min(1),
  /** A .proto whose response message has the same `token` / `done` / `error` fields as generate.proto. */
  protoPath: z.string().default(GENERATE_PROTO_PATH),
  /** Fully qualified service name. */
  service: z.string().default('tokenwire.generate.v1.Generate'),
  method: z.string().default('Stream'),
  /** `server-stream`: one request, a stream back. `bidi`: the request is written on a bidirectional stream. */
  mode: z.enum(['server-stream', 'bidi']).default('server-stream'),
  tls: z.boolean().default(false),
});
export type GrpcProviderOptions = z.input<typeof grpcOptionsSchema>;

interface GenerateResponse {
  event?: 'token' | 'done' | 'error';
  token?: string;
  done?: { finish_reason?: string; usage?: { prompt_tokens?: number; completion_tokens?: number } };
  error?: { code?: string; message?: string };
}

const FINISH: Record<string, ProviderFinishReason> = { stop: 'stop', length: 'length', tool_calls: 'tool_calls', content_filter: 'content_filter' };

/** A gRPC streaming server (generate.proto by default); aborting cancels the call. */
export class GrpcProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'grpc';
  // generate.proto carries text messages and these parameters, nothing else.
  readonly capabilities: ProviderCapabilities = {
    streaming: true,
    tools: false,
    usage: true,
    images: 'none',
    params: { temperature: true, topP: true, maxTokens: true, stop: true, seed: true },
  };
  private readonly options: z.output<typeof grpcOptionsSchema>;
  private readonly client: grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientReadableStream<GenerateResponse> & grpc.ClientDuplexStream<unknown, GenerateResponse>>;

  constructor(options: GrpcProviderOptions) {
    this.options = grpcOptionsSchema.parse(options);
    const definition = protoLoader.loadSync(this.options.protoPath, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
    const loaded = grpc.loadPackageDefinition(definition);
    const Service = this.options.service.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], loaded) as
      | (new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client)
      | undefined;
    if (typeof Service !== 'function') throw new Error(`service "${this.options.service}" is not in ${this.options.protoPath}`);
    const credentials = this.options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    this.client = new Service(this.options.address, credentials) as never;
    if (typeof this.client[this.options.method] !== 'function') throw new Error(`method "${this.options.method}" is not in service "${this.options.service}"`);
  }

  async *stream(request: ProviderRequest, { signal, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    signal.throwIfAborted();
    const p = request.params;
    const message = {
      model: request.model,
      messages: request.messages.map((m) => ({ role: m.role, content: contentText(m.content) })),
      params: { temperature: p.temperature, top_p: p.topP, max_tokens: p.maxTokens, stop: p.stop ?? [], seed: p.seed },
    };
    const method = this.client[this.options.method]!.bind(this.client);
    const call = this.options.mode === 'bidi' ? method() : method(message);
    if (this.options.mode === 'bidi') {
      call.write(message);
      call.end();
    }
    const onAbort = () => call.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    let sent = false;
    try {
      for await (const response of call as AsyncIterable<GenerateResponse>) {
        heartbeat?.();
        if (response.event === 'token' && response.token) {
          sent = true;
          yield { type: 'text-delta', text: response.token };
        } else if (response.event === 'error') {
          throw new UpstreamReportedError(`${response.error?.code ?? 'error'}: ${response.error?.message ?? ''}`, { code: response.error?.code, message: response.error?.message });
        } else if (response.event === 'done') {
          const usage = response.done?.usage;
          if (usage) yield { type: 'usage', usage: { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } };
          const raw = response.done?.finish_reason ?? 'stop';
          yield { type: 'finish', reason: FINISH[raw] ?? 'stop', raw };
          return;
        }
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof UpstreamError) throw error;
      throw upstreamErrorForGrpcStatus(error as grpc.ServiceError, this.options.address, sent);
    } finally {
      signal.removeEventListener('abort', onAbort);
      call.cancel(); // no-op once the call has ended; stops it when the consumer left early
    }
    throw new UpstreamClosedError('the gRPC stream ended without a done message', { afterOutput: sent });
  }
}
