import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TRITON_PROTO_PATH, encodeBytesTensor } from '@tokenwire/providers';
import { GRPC_CODE_FOR_STATUS, MALFORMED, grpcRefuse, grpcScriptStep, scriptedSerializer } from './grpc-protocol-server';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer, type ReceivedRequest } from './protocol-server';

/**
 * Triton's GRPCInferenceService/ModelStreamInfer for a decoupled TensorRT-LLM-style model:
 * reads `text_input`, `max_tokens`, `stream`; answers one response per token with `text_output`
 * in raw_output_contents (BYTES serialization), then an empty response flagged `triton_final_response`.
 */
export class TritonProtocolServer implements ProtocolServer {
  readonly providerType = 'triton';
  readonly transport = 'grpc' as const;
  /** The last request's inputs, by tensor name, every element. */
  lastInputValues: Record<string, unknown[]> = {};
  readonly reportsUsage = 'none' as const;
  script: ProtocolScript = { tokens: ['Hello', ',', ' world'] };
  requests = 0;
  /** The last request's inputs, by tensor name. */
  lastInputs: Record<string, unknown> = {};
  private readonly closes = new CloseTracker();
  private readonly server = new grpc.Server();
  private port = 0;

  providerOptions() {
    return { address: `127.0.0.1:${this.port}` };
  }

  received(): ReceivedRequest {
    const v = this.lastInputValues;
    const one = (name: string) => v[name]?.[0];
    return {
      tools: [],
      params: {
        temperature: one('temperature'),
        topP: one('top_p'),
        topK: one('top_k'),
        maxTokens: one('max_tokens'),
        stop: v.stop_words?.map((b) => String(b)),
        seed: one('random_seed') === undefined ? undefined : Number(String(one('random_seed'))),
        presencePenalty: one('presence_penalty'),
        frequencyPenalty: one('frequency_penalty'),
      },
      userTexts: [String(one('text_input'))],
      userImages: [],
    };
  }

  upstreamCodeFor(refuse: NonNullable<ProtocolScript['refuse']>): string {
    return grpc.status[GRPC_CODE_FOR_STATUS[refuse.status] ?? grpc.status.UNKNOWN];
  }

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
  }

  async start(): Promise<void> {
    const definition = protoLoader.loadSync(TRITON_PROTO_PATH, { keepCase: true, longs: String, oneofs: true });
    const method = (definition['inference.GRPCInferenceService'] as Record<string, protoLoader.MethodDefinition<unknown, unknown>>).ModelStreamInfer!;
    const serialize = scriptedSerializer((value) => method.responseSerialize(value));
    this.server.register(
      method.path,
      (call: grpc.ServerDuplexStream<Record<string, unknown>, unknown>) => call.once('data', (request) => void this.answer(call, request)),
      serialize,
      method.requestDeserialize,
      'bidi',
    );
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
    );
  }

  async stop(): Promise<void> {
    this.server.forceShutdown();
  }

  private async answer(call: grpc.ServerDuplexStream<Record<string, unknown>, unknown>, request: Record<string, unknown>): Promise<void> {
    this.requests++;
    const inputs = (request.inputs ?? []) as Array<{ name: string; contents?: Record<string, unknown[]> }>;
    this.lastInputs = Object.fromEntries(inputs.map((input) => [input.name, Object.values(input.contents ?? {})[0]?.[0]]));
    this.lastInputValues = Object.fromEntries(inputs.map((input) => [input.name, Object.values(input.contents ?? {})[0] ?? []]));
    const tracking = this.closes.opened();
    call.on('cancelled', tracking.closed);
    const script = this.script;
    if (script.silent) return;
    if (script.refuse) return grpcRefuse(call as never, script.refuse);
    const response = (text: string | undefined, final: boolean) => ({
      infer_response: {
        model_name: request.model_name,
        id: request.id,
        parameters: { triton_final_response: { bool_param: final } },
        outputs: text === undefined ? [] : [{ name: 'text_output', datatype: 'BYTES', shape: [1, 1] }],
        raw_output_contents: text === undefined ? [] : [encodeBytesTensor([text])],
      },
    });
    for (let i = 0; i < script.tokens.length; i++) {
      if (await grpcScriptStep(call as never, script, i)) return;
      if (script.errorAfter === i) {
        call.write({ error_message: 'in ensemble: model tensorrt_llm failed: out of KV cache blocks' });
        call.end();
        return;
      }
      if (script.malformedAfter === i) {
        call.write(MALFORMED);
        return;
      }
      if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
      if (call.cancelled) return;
      call.write(response(script.tokens[i], false));
    }
    tracking.finished();
    call.write(response(undefined, true));
    call.end();
  }
}
