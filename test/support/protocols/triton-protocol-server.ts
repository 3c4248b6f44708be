import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TRITON_PROTO_PATH, encodeBytesTensor } from '@tokenwire/providers';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer } from './protocol-server';

const MALFORMED = Symbol('malformed');

/**
 * Triton's GRPCInferenceService/ModelStreamInfer for a decoupled TensorRT-LLM-style model:
 * reads `text_input`, `max_tokens`, `stream`; answers one response per token with `text_output`
 * in raw_output_contents (BYTES serialization), then an empty response flagged `triton_final_response`.
 */
export class TritonProtocolServer implements ProtocolServer {
  readonly providerType = 'triton';
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

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
  }

  async start(): Promise<void> {
    const definition = protoLoader.loadSync(TRITON_PROTO_PATH, { keepCase: true, longs: String, oneofs: true });
    const method = (definition['inference.GRPCInferenceService'] as Record<string, protoLoader.MethodDefinition<unknown, unknown>>).ModelStreamInfer!;
    const serialize = (value: unknown) => (value === MALFORMED ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : method.responseSerialize(value));
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
    const tracking = this.closes.opened();
    call.on('cancelled', tracking.closed);
    const script = this.script;
    if (script.silent) return;
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
