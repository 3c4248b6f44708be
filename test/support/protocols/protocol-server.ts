/** What a fake upstream does for a request, in any protocol. */
export interface ProtocolScript {
  tokens: string[];
  tokenDelayMs?: number;
  usage?: { prompt: number; completion: number };
  /** Report an error the protocol's own way after this many tokens. */
  errorAfter?: number;
  /** Send an unparseable frame after this many tokens. */
  malformedAfter?: number;
  /** Accept the request and never answer. */
  silent?: boolean;
  /** Answer with this tool call, in the protocol's own form (arguments streamed in two pieces where it streams them). */
  toolCall?: { id: string; name: string; arguments: Record<string, unknown> };
  /** Send one event of a type (or with fields) the protocol does not define yet, after this many tokens. */
  unknownEventAfter?: number;
  /** HTTP: compress the body with this encoding whatever the request's Accept-Encoding says. */
  compress?: 'gzip' | 'deflate' | 'br';
  /** HTTP: start the body with a UTF-8 BOM. */
  bom?: boolean;
  /** Refuse the request before any token, the protocol's own way (HTTP status and error body, gRPC status, error event). */
  refuse?: { status: number; code: string; message: string; param?: string };
  /**
   * End the reply as if this stop sequence had matched after the tokens, the protocol's own way: Anthropic
   * `stop_reason: "stop_sequence"` with the string; OpenAI-compatible `finish_reason: "stop"` plus vLLM's
   * `stop_reason` string; TGI `finish_reason: "stop_sequence"` with the sequence as the last (non-special)
   * token, which TGI leaves in the text. Other protocols cannot say it: a plain stop.
   */
  stopSequence?: string;
  /** Break the connection after this many tokens (gRPC: the status UNAVAILABLE, as a dying server or proxy ends it). */
  dropAfter?: number;
  /**
   * Before the first token, send only the protocol's keep-alive (an SSE comment, Anthropic's `ping`, a WebSocket ping)
   * every `everyMs` for `forMs`, as an upstream that queues the request does.
   */
  keepAlive?: { everyMs: number; forMs: number };
}

/** What the upstream received, read back from its own request shape. */
export interface ReceivedRequest {
  /** Tool names offered. */
  tools: string[];
  /** The sampling parameters, by the gateway's names, as the upstream got them. */
  params: Record<string, unknown>;
  /** The last user message: its text pieces as separate strings where the protocol keeps parts, and images as base64. */
  userTexts: string[];
  userImages: string[];
}

/** A real server speaking one upstream protocol, scripted by the tests. */
export interface ProtocolServer {
  /** The provider type that speaks this protocol, and its options for this server. */
  readonly providerType: string;
  providerOptions(): Record<string, unknown>;
  script: ProtocolScript;
  requests: number;
  /** What usage the protocol reports (TGI only completion tokens, Triton none). Default: both. */
  readonly reportsUsage?: 'both' | 'completion' | 'none';
  /** False when the protocol sends tool calls without ids (Ollama): the provider makes them. */
  readonly sendsToolCallIds?: boolean;
  /** HTTP servers: the request headers of the latest request. */
  readonly transport: 'http' | 'websocket' | 'grpc';
  /** What the server sends as a keep-alive (`script.keepAlive`); absent when it cannot send one. */
  readonly keepAliveForm?: string;
  lastHeaders?: Record<string, string | string[] | undefined>;
  /** The latest request, read back. */
  received(): ReceivedRequest;
  /** The `upstreamCode` a refusal (`script.refuse`) becomes, when the protocol carries a code. */
  upstreamCodeFor(refuse: NonNullable<ProtocolScript['refuse']>): string | undefined;
  /** Resolves with performance.now() when the latest request's connection closed before the server finished. */
  lastEarlyClose(): Promise<number>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Tracks early closes: `opened()` per request, `closed()` when the connection ends before `finished()`. */
export class CloseTracker {
  private latest: Promise<number> = new Promise(() => undefined);

  opened(): { closed: () => void; finished: () => void } {
    let resolve!: (at: number) => void;
    this.latest = new Promise((r) => (resolve = r));
    let done = false;
    return {
      closed: () => !done && resolve(performance.now()),
      finished: () => (done = true),
    };
  }

  lastEarlyClose(): Promise<number> {
    return this.latest;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
