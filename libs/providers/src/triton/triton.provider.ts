import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { z } from 'zod';
import type { GenerationParams } from '@tokenwire/contracts';
import { UpstreamClosedError, UpstreamError, UpstreamProtocolError, UpstreamReportedError } from '../errors';
import { chatTranscript } from '../internal/content';
import { upstreamErrorForGrpcStatus } from '../internal/grpc-status';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderCapabilities, type ProviderChunk, type ProviderRequest, type StreamOptions } from '../provider';

export const TRITON_PROTO_PATH = path.join(path.dirname(require.resolve('@tokenwire/contracts/package.json')), 'proto', 'triton', 'grpc_service.proto');

export const tritonOptionsSchema = z.object({
  /** host:port of Triton's gRPC endpoint (8001 by default in Triton). */
  address: z.string().min(1),
  tls: z.boolean().default(false),
  modelVersion: z.string().default(''),
  /** Tensor names; the defaults are TensorRT-LLM's ensemble model. */
  textInput: z.string().default('text_input'),
  maxTokensInput: z.string().default('max_tokens'),
  streamInput: z.string().default('stream'),
  textOutput: z.string().default('text_output'),
  /** max_tokens when the request has none (the ensemble requires it). */
  defaultMaxTokens: z.number().int().positive().default(512),
  /** `transcript`: every message as `role: text` lines then `assistant:`; `last-user`: only the last user message. */
  prompt: z.enum(['transcript', 'last-user']).default('transcript'),
});
export type TritonOptions = z.input<typeof tritonOptionsSchema>;

type Parameter = { bool_param?: boolean; int64_param?: string; string_param?: string };
interface OutputTensor {
  name: string;
  datatype?: string;
  contents?: { bytes_contents?: Buffer[] };
}
interface StreamResponse {
  error_message?: string;
  infer_response?: { outputs?: OutputTensor[]; raw_output_contents?: Buffer[]; parameters?: Record<string, Parameter> };
}

/**
 * NVIDIA Triton / TensorRT-LLM, decoupled models over `ModelStreamInfer` (bidi gRPC):
 * one request on the stream, one response per token batch, end at `triton_final_response`.
 */
export class TritonProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'triton';
  readonly capabilities: ProviderCapabilities = {
    streaming: true,
    tools: false,
    usage: false,
    images: 'none',
    params: { temperature: true, topP: true, maxTokens: true, stop: true, seed: true, presencePenalty: true, frequencyPenalty: true },
  };
  private readonly options: z.output<typeof tritonOptionsSchema>;
  private readonly client: grpc.Client & { ModelStreamInfer: () => grpc.ClientDuplexStream<unknown, StreamResponse> };

  constructor(options: TritonOptions) {
    this.options = tritonOptionsSchema.parse(options);
    const definition = protoLoader.loadSync(TRITON_PROTO_PATH, { keepCase: true, longs: String, defaults: false, oneofs: true });
    const Service = (grpc.loadPackageDefinition(definition).inference as Record<string, unknown>).GRPCInferenceService as new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client;
    this.client = new Service(this.options.address, this.options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure()) as never;
  }

  async *stream(request: ProviderRequest, { signal, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    signal.throwIfAborted();
    const o = this.options;
    const prompt = chatTranscript(request.messages, o.prompt);
    const call = this.client.ModelStreamInfer();
    const onAbort = () => call.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    call.write({
      model_name: request.model,
      model_version: o.modelVersion,
      id: `tw-${Date.now()}`,
      // Without it Triton sends no response carrying the final flag when the last one had tokens.
      parameters: { triton_enable_empty_final_response: { bool_param: true } },
      inputs: [
        { name: o.textInput, datatype: 'BYTES', shape: [1, 1], contents: { bytes_contents: [Buffer.from(prompt)] } },
        { name: o.maxTokensInput, datatype: 'INT32', shape: [1, 1], contents: { int_contents: [request.params.maxTokens ?? o.defaultMaxTokens] } },
        { name: o.streamInput, datatype: 'BOOL', shape: [1, 1], contents: { bool_contents: [true] } },
        ...tritonSamplingInputs(request.params),
      ],
      outputs: [{ name: o.textOutput }],
    });
    let sent = false;
    try {
      for await (const response of call as AsyncIterable<StreamResponse>) {
        heartbeat?.();
        if (response.error_message) throw new UpstreamReportedError(response.error_message);
        const infer = response.infer_response;
        if (!infer) continue;
        const text = this.outputText(infer);
        if (text) {
          sent = true;
          yield { type: 'text-delta', text };
        }
        if (infer.parameters?.triton_final_response?.bool_param) {
          yield { type: 'finish', reason: 'stop' };
          return;
        }
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof UpstreamError) throw error;
      throw upstreamErrorForGrpcStatus(error as grpc.ServiceError, `Triton at ${o.address}`, sent);
    } finally {
      signal.removeEventListener('abort', onAbort);
      call.cancel();
    }
    throw new UpstreamClosedError('Triton ended the stream without triton_final_response', { afterOutput: sent });
  }

  /** The text_output tensor of one response: from raw_output_contents (BYTES serialization) or contents. */
  private outputText(infer: NonNullable<StreamResponse['infer_response']>): string {
    const index = infer.outputs?.findIndex((output) => output.name === this.options.textOutput) ?? -1;
    if (index < 0) return '';
    const raw = infer.raw_output_contents?.[index];
    if (raw) return decodeBytesTensor(raw).join('');
    return (infer.outputs![index]!.contents?.bytes_contents ?? []).map((b) => b.toString('utf8')).join('');
  }
}

/**
 * The TensorRT-LLM ensemble's sampling inputs (tensor names as in tensorrtllm_backend's ensemble).
 * Temperature 0 or top_p 0 (OpenAI's "always the likeliest token") is greedy decoding, `top_k` 1;
 * top_p 1 (no nucleus cut) is left out, since TensorRT-LLM reads top_p 0 as "off", not as greedy.
 */
export function tritonSamplingInputs(p: GenerationParams): unknown[] {
  const scalar = (name: string, datatype: string, contents: Record<string, unknown[]>) => ({ name, datatype, shape: [1, 1], contents });
  const greedy = p.temperature === 0 || p.topP === 0;
  return [
    ...(greedy ? [scalar('top_k', 'INT32', { int_contents: [1] })] : []),
    ...(!greedy && p.temperature !== undefined ? [scalar('temperature', 'FP32', { fp32_contents: [p.temperature] })] : []),
    ...(!greedy && p.topP !== undefined && p.topP < 1 ? [scalar('top_p', 'FP32', { fp32_contents: [p.topP] })] : []),
    ...(p.stop?.length ? [{ name: 'stop_words', datatype: 'BYTES', shape: [1, p.stop.length], contents: { bytes_contents: p.stop.map((s) => Buffer.from(s)) } }] : []),
    ...(p.seed !== undefined ? [scalar('random_seed', 'UINT64', { uint64_contents: [String(BigInt.asUintN(64, BigInt(p.seed)))] })] : []),
    ...(p.presencePenalty !== undefined ? [scalar('presence_penalty', 'FP32', { fp32_contents: [p.presencePenalty] })] : []),
    ...(p.frequencyPenalty !== undefined ? [scalar('frequency_penalty', 'FP32', { fp32_contents: [p.frequencyPenalty] })] : []),
  ];
}

/** Triton's BYTES tensor serialization: each element is a 4-byte little-endian length, then the bytes. */
export function decodeBytesTensor(raw: Buffer): string[] {
  const elements: string[] = [];
  for (let offset = 0; offset < raw.length; ) {
    if (offset + 4 > raw.length) throw new UpstreamProtocolError('truncated BYTES tensor');
    const length = raw.readUInt32LE(offset);
    offset += 4;
    if (offset + length > raw.length) throw new UpstreamProtocolError('truncated BYTES tensor element');
    elements.push(raw.toString('utf8', offset, offset + length));
    offset += length;
  }
  return elements;
}

export function encodeBytesTensor(elements: string[]): Buffer {
  return Buffer.concat(elements.flatMap((element) => {
    const bytes = Buffer.from(element);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length);
    return [length, bytes];
  }));
}
