import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { GENERATE_PROTO_PATH } from '@tokenwire/providers';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer } from './protocol-server';

const MALFORMED = Symbol('malformed');

/**
 * The Generate service of generate.proto on a grpc-js server. Handlers are registered
 * with the proto's own serializers, so the server can also send bytes that are not protobuf.
 */
export class GrpcProtocolServer implements ProtocolServer {
  readonly providerType = 'grpc';
  script: ProtocolScript = { tokens: ['Hello', ',', ' world'] };
  requests = 0;
  private readonly closes = new CloseTracker();
  private readonly server = new grpc.Server();
  private port = 0;

  constructor(private readonly mode: 'server-stream' | 'bidi' = 'server-stream') {}

  providerOptions() {
    return { address: `127.0.0.1:${this.port}`, mode: this.mode, method: this.mode === 'bidi' ? 'Chat' : 'Stream' };
  }

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
  }

  async start(): Promise<void> {
    const definition = protoLoader.loadSync(GENERATE_PROTO_PATH, { keepCase: true, oneofs: true });
    const service = definition['tokenwire.generate.v1.Generate'] as Record<string, protoLoader.MethodDefinition<unknown, unknown>>;
    const serialize = (method: protoLoader.MethodDefinition<unknown, unknown>) => (value: unknown) =>
      value === MALFORMED ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : method.responseSerialize(value);
    const stream = service.Stream!;
    this.server.register(stream.path, (call: grpc.ServerWritableStream<unknown, unknown>) => void this.answer(call), serialize(stream), stream.requestDeserialize, 'serverStream');
    const chat = service.Chat!;
    this.server.register(
      chat.path,
      (call: grpc.ServerDuplexStream<unknown, unknown>) => call.once('data', () => void this.answer(call)),
      serialize(chat),
      chat.requestDeserialize,
      'bidi',
    );
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
    );
  }

  async stop(): Promise<void> {
    this.server.forceShutdown();
  }

  private async answer(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): Promise<void> {
    this.requests++;
    const tracking = this.closes.opened();
    call.on('cancelled', tracking.closed);
    const script = this.script;
    if (script.silent) return;
    for (let i = 0; i < script.tokens.length; i++) {
      if (script.errorAfter === i) {
        call.write({ error: { code: 'internal', message: 'inference failed' } });
        call.end();
        return;
      }
      if (script.malformedAfter === i) {
        call.write(MALFORMED);
        return;
      }
      if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
      if (call.cancelled) return;
      call.write({ token: script.tokens[i] });
    }
    tracking.finished();
    call.write({ done: { finish_reason: 'stop', ...(script.usage ? { usage: { prompt_tokens: script.usage.prompt, completion_tokens: script.usage.completion } } : {}) } });
    call.end();
  }
}
