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
