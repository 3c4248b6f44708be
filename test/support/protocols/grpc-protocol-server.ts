import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { GENERATE_PROTO_PATH } from '@tokenwire/providers';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer, type ReceivedRequest } from './protocol-server';

const MALFORMED = Symbol('malformed');
/** A message with only field 15 (varint 1): a field this proto version does not define yet. */
const UNKNOWN_FIELD = Symbol('unknown-field');

/** The gRPC status an HTTP-minded refusal becomes (the inverse of the gateway's table). */
export const GRPC_CODE_FOR_STATUS: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  429: grpc.status.RESOURCE_EXHAUSTED,
};

/** What a script's refusal, drop and unknown-field points look like on a gRPC stream; true when the answer ended there. */
export async function grpcScriptStep(call: grpc.ServerWritableStream<unknown, unknown>, script: ProtocolScript, i: number): Promise<boolean> {
  if (script.dropAfter === i) {
    await sleep(50);
    call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'Connection dropped' });
    return true;
  }
  if (script.unknownEventAfter === i) call.write(UNKNOWN_FIELD);
  return false;
}

export function grpcRefuse(call: grpc.ServerWritableStream<unknown, unknown>, refuse: NonNullable<ProtocolScript['refuse']>): void {
  call.emit('error', { code: GRPC_CODE_FOR_STATUS[refuse.status] ?? grpc.status.UNKNOWN, details: refuse.message });
}

/** A serializer that can also send bytes that are not protobuf, and a message with a field not defined yet. */
export const scriptedSerializer = (serialize: (value: unknown) => Buffer) => (value: unknown) =>
  value === MALFORMED ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : value === UNKNOWN_FIELD ? Buffer.from([0x78, 0x01]) : serialize(value);
export { MALFORMED };

/**
 * The Generate service of generate.proto on a grpc-js server. Handlers are registered
 * with the proto's own serializers, so the server can also send bytes that are not protobuf.
 */
export class GrpcProtocolServer implements ProtocolServer {
  readonly providerType = 'grpc';
  readonly transport = 'grpc' as const;
  lastRequest: Record<string, unknown> = {};
  script: ProtocolScript = { tokens: ['Hello', ',', ' world'] };
  requests = 0;
  private readonly closes = new CloseTracker();
  private readonly server = new grpc.Server();
  private port = 0;

  constructor(private readonly mode: 'server-stream' | 'bidi' = 'server-stream') {}

  providerOptions() {
    return { address: `127.0.0.1:${this.port}`, mode: this.mode, method: this.mode === 'bidi' ? 'Chat' : 'Stream' };
  }

  received(): ReceivedRequest {
    const r = this.lastRequest as { messages?: Array<{ role: string; content: string }>; params?: Record<string, unknown> };
    const p = r.params ?? {};
    const user = r.messages?.filter((m) => m.role === 'user').at(-1);
    return {
      tools: [],
      params: { temperature: p.temperature, topP: p.top_p, maxTokens: p.max_tokens, stop: (p.stop as string[] | undefined)?.length ? p.stop : undefined, seed: p.seed === undefined ? undefined : Number(String(p.seed)) },
      userTexts: user ? [user.content] : [],
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
    const definition = protoLoader.loadSync(GENERATE_PROTO_PATH, { keepCase: true, oneofs: true });
    const service = definition['tokenwire.generate.v1.Generate'] as Record<string, protoLoader.MethodDefinition<unknown, unknown>>;
    const serialize = (method: protoLoader.MethodDefinition<unknown, unknown>) => scriptedSerializer((value) => method.responseSerialize(value));
    const stream = service.Stream!;
    this.server.register(
      stream.path,
      (call: grpc.ServerWritableStream<unknown, unknown>) => void this.answer(call, call.request as Record<string, unknown>),
      serialize(stream),
      stream.requestDeserialize,
      'serverStream',
    );
    const chat = service.Chat!;
    this.server.register(
      chat.path,
      (call: grpc.ServerDuplexStream<unknown, unknown>) => call.once('data', (request: Record<string, unknown>) => void this.answer(call, request)),
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

  private async answer(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, request: Record<string, unknown>): Promise<void> {
    this.requests++;
    this.lastRequest = request;
    const tracking = this.closes.opened();
    call.on('cancelled', tracking.closed);
    const script = this.script;
    if (script.silent) return;
    if (script.refuse) return grpcRefuse(call as grpc.ServerWritableStream<unknown, unknown>, script.refuse);
    for (let i = 0; i < script.tokens.length; i++) {
      if (await grpcScriptStep(call as grpc.ServerWritableStream<unknown, unknown>, script, i)) return;
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
