import { providerConformance } from './conformance';
import { AnthropicProtocolServer, OllamaProtocolServer, OpenAIProtocolServer, ResponsesHttpProtocolServer, TgiProtocolServer } from '../support/protocols/http-protocol-servers';
import { ResponsesWsProtocolServer } from '../support/protocols/responses-ws-protocol-server';
import { TritonProtocolServer } from '../support/protocols/triton-protocol-server';
import { WebSocketProtocolServer } from '../support/protocols/websocket-protocol-server';
import { GrpcProtocolServer } from '../support/protocols/grpc-protocol-server';

providerConformance('openai-compatible (HTTP SSE)', () => new OpenAIProtocolServer());
providerConformance('ollama (NDJSON)', () => new OllamaProtocolServer());
providerConformance('anthropic (Messages SSE)', () => new AnthropicProtocolServer());
providerConformance('websocket', () => new WebSocketProtocolServer());
providerConformance('websocket with permessage-deflate', () => new WebSocketProtocolServer(true));
providerConformance('grpc (server streaming)', () => new GrpcProtocolServer('server-stream'));
providerConformance('grpc (bidirectional)', () => new GrpcProtocolServer('bidi'));
providerConformance('triton (ModelStreamInfer)', () => new TritonProtocolServer());
providerConformance('openai-responses-ws', () => new ResponsesWsProtocolServer());
providerConformance('tgi (generate_stream)', () => new TgiProtocolServer());
providerConformance('openai-compatible with api: responses (HTTP SSE)', () => new ResponsesHttpProtocolServer());
