import { createParser } from 'eventsource-parser';
import { io, type Socket } from 'socket.io-client';
import {
  GENERATIONS_NAMESPACE,
  type ClientToServerEvents,
  type GatewayError,
  type ServerToClientEvents,
  type SocketGenerateRequest,
  type StreamEvent,
} from '@tokenwire/contracts';
import { Backoff } from './backoff';
import { GenerationStream } from './generation-stream';

export interface TokenwireClientOptions {
  /** The api's base URL, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  apiKey?: string;
  /** `socket` (Socket.IO, needed for rooms) or `sse` (plain HTTP). */
  transport?: 'socket' | 'sse';
  /** First pause before resuming a dropped stream; it doubles per failed attempt (with jitter) up to `maxReconnectDelayMs`. */
  reconnectDelayMs?: number;
  /** Cap of that pause. */
  maxReconnectDelayMs?: number;
}

/** An error the gateway answered with (HTTP status, or a socket ack). */
export class TokenwireError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'TokenwireError';
  }
}

type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
const STREAM_EVENTS = ['chunk', 'usage', 'done', 'error', 'cancelled', 'restarted'] as const;

/** The socket's state as a user should see it: a drop is `reconnecting`, and `reconnected` means open streams resumed. */
export type ConnectionState = 'connected' | 'reconnecting' | 'reconnected';

/**
 * The Tokenwire client for Node and browsers. `generate()` and `subscribe()` return
 * a GenerationStream; after a disconnect (network, api restart) it resumes from its
 * last seq by itself, so the caller sees every event exactly once.
 */
export class TokenwireClient {
  private socket?: ClientSocket;
  private readonly streams = new Map<string, GenerationStream>();
  private readonly rooms = new Map<string, (stream: GenerationStream) => void>();
  /** Generations already handed to a room callback (the announcement and the ack may come in either order). */
  private readonly announced = new Set<string>();
  private readonly aborts = new Set<AbortController>();
  private readonly connectionListeners = new Set<(state: ConnectionState) => void>();
  private readonly transport: 'socket' | 'sse';

  constructor(private readonly options: TokenwireClientOptions) {
    this.transport = options.transport ?? 'socket';
  }

  /** Starts a generation; with `conversationId` (socket transport) every member of that room receives it. */
  async generate(request: SocketGenerateRequest): Promise<GenerationStream> {
    if (this.transport === 'sse') {
      if (request.conversationId) throw new TokenwireError('invalid_request', 'conversation rooms need the socket transport');
      const { id } = await this.http<{ id: string }>('POST', '/v1/generations', request);
      return this.subscribe(id);
    }
    const socket = await this.connect();
    const ack = await socket.emitWithAck('generate', request);
    if (!ack.ok) throw fromGatewayError(ack.error);
    // Room generations arrive through the room's `generation` announcement; track the id either way.
    return this.track(ack.jobId, 0);
  }

  /** Streams an existing generation from after `afterSeq` (0: from the start). */
  subscribe(jobId: string, { afterSeq = 0 }: { afterSeq?: number } = {}): GenerationStream {
    const stream = this.track(jobId, afterSeq);
    if (this.transport === 'sse') this.followSse(stream).catch((error: unknown) => stream.fail(error instanceof Error ? error : new Error(String(error))));
    else
      void this.connect()
        .then((socket) => this.resubscribe(socket, stream, this.backoff()))
        // A dropped socket resubscribes on reconnect; only a refused connection ends the stream.
        .catch((error: unknown) => error instanceof TokenwireError && stream.fail(error));
    return stream;
  }

  /** Cancels a generation upstream. False when it had already ended. */
  async cancel(jobId: string): Promise<boolean> {
    if (this.transport === 'socket') {
      const ack = await (await this.connect()).emitWithAck('cancel', { jobId });
      if (!ack.ok && ack.error.code === 'already_ended') return false;
      if (!ack.ok) throw fromGatewayError(ack.error);
      return ack.cancelled;
    }
    try {
      await this.http('DELETE', `/v1/generations/${encodeURIComponent(jobId)}`);
      return true;
    } catch (error) {
      if (error instanceof TokenwireError && error.status === 409) return false;
      throw error;
    }
  }

  /**
   * Joins a conversation room (socket transport). `onGeneration` gets a stream for the
   * room's running generation (from its start) and for every one started later.
   */
  async join(conversationId: string, onGeneration: (stream: GenerationStream) => void): Promise<void> {
    this.rooms.set(conversationId, onGeneration);
    await this.joinRoom(await this.connect(), conversationId);
  }

  async leave(conversationId: string): Promise<void> {
    this.rooms.delete(conversationId);
    const ack = await (await this.connect()).emitWithAck('leave', { conversationId });
    if (!ack.ok) throw fromGatewayError(ack.error);
  }

  /** Calls `listener` on every change of the socket connection (socket transport); returns a function that stops it. */
  onConnection(listener: (state: ConnectionState) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  close(): void {
    for (const controller of this.aborts) controller.abort();
    this.socket?.close();
    this.socket = undefined;
  }

  private track(jobId: string, afterSeq: number): GenerationStream {
    const existing = this.streams.get(jobId);
    if (existing && !existing.isFinished) return existing;
    const stream = new GenerationStream(jobId, afterSeq, (id) => this.cancel(id), (s) => this.streams.get(s.jobId) === s && this.streams.delete(s.jobId));
    this.streams.set(jobId, stream);
    return stream;
  }

  private backoff(): Backoff {
    return new Backoff(this.options.reconnectDelayMs ?? 250, this.options.maxReconnectDelayMs ?? 10_000);
  }

  /**
   * Subscribes the socket to the stream from its last seq. A 4xx answer (gone, not resumable, a bad
   * seq) ends the stream with that error and is never retried; any other failure is retried with backoff.
   */
  private async resubscribe(socket: ClientSocket, stream: GenerationStream, backoff: Backoff): Promise<void> {
    while (!stream.isFinished && socket.connected && this.socket === socket) {
      const ack = await socket.emitWithAck('subscribe', { jobId: stream.jobId, afterSeq: stream.lastSeq }).catch(() => undefined);
      if (ack?.ok) {
        if (ack.ended) stream.endBeforeStart(new TokenwireError('already_ended', `generation '${stream.jobId}' ended at seq ${stream.lastSeq}`));
        return;
      }
      if (!ack) return; // disconnected meanwhile: the next connect resubscribes
      if (isClientError(ack.error)) {
        stream.fail(fromGatewayError(ack.error));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, backoff.next()));
    }
  }

  private async joinRoom(socket: ClientSocket, conversationId: string): Promise<void> {
    const ack = await socket.emitWithAck('join', { conversationId });
    if (!ack.ok) throw fromGatewayError(ack.error);
  }

  /** One Socket.IO connection per client; on every reconnect it re-subscribes each open stream from its last seq. */
  private connect(): Promise<ClientSocket> {
    if (this.socket?.connected) return Promise.resolve(this.socket);
    if (!this.socket) {
      const socket: ClientSocket = io(`${this.options.baseUrl}${GENERATIONS_NAMESPACE}`, {
        transports: ['websocket'],
        auth: this.options.apiKey ? { token: this.options.apiKey } : {},
        reconnectionDelay: 200,
        reconnectionDelayMax: 2000,
      });
      for (const type of STREAM_EVENTS) socket.on(type, (event: StreamEvent) => this.streams.get(event.jobId)?.push(event));
      // An `error` without a jobId is about the connection (key revoked, message too large) and the
      // server disconnects right after: every open stream ends with it (a revoked key cannot reconnect).
      socket.on('error', (event) => {
        if ('jobId' in event) return;
        const error = fromGatewayError(event);
        for (const stream of [...this.streams.values()]) stream.fail(error);
      });
      socket.on('dropped', ({ jobId, code, message }) => {
        // A trimmed log is final; a slow consumer is disconnected next and resumes on reconnect.
        if (jobId && code === 'stream_expired') this.streams.get(jobId)?.fail(new TokenwireError(code, message, 410));
      });
      const serverDisconnects = this.backoff();
      socket.on('disconnect', (reason) => {
        // Socket.IO reconnects by itself (with its own capped backoff) except after the server disconnected it.
        if (reason === 'io server disconnect' && this.socket === socket) setTimeout(() => this.socket === socket && socket.connect(), serverDisconnects.next());
      });
      socket.on('generation', ({ conversationId, jobId }) => {
        const onGeneration = this.rooms.get(conversationId);
        const stream = this.track(jobId, 0);
        if (onGeneration && !this.announced.has(jobId)) {
          this.announced.add(jobId);
          onGeneration(stream);
        }
      });
      let connectedBefore = false;
      socket.on('connect', () => {
        // Reset once the connection has stayed up a while, not at once: a server that cuts every connection still backs off.
        setTimeout(() => socket.connected && serverDisconnects.reset(), 5_000);
        if (connectedBefore) {
          // A resubscribe cut short by another disconnect is simply sent again on the next connect.
          for (const stream of this.streams.values()) void this.resubscribe(socket, stream, this.backoff()).catch(() => undefined);
          for (const conversationId of this.rooms.keys()) void this.joinRoom(socket, conversationId).catch(() => undefined);
        }
        for (const listener of this.connectionListeners) listener(connectedBefore ? 'reconnected' : 'connected');
        connectedBefore = true;
      });
      socket.on('disconnect', () => {
        // Socket.IO reconnects by itself unless this client closed the socket.
        if (socket.active) for (const listener of this.connectionListeners) listener('reconnecting');
      });
      this.socket = socket;
    }
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      if (socket.connected) return resolve(socket);
      const onConnect = () => {
        socket.off('connect_error', onError);
        resolve(socket);
      };
      const onError = (error: Error & { data?: GatewayError }) => {
        // A refused handshake (bad key) is final; anything else Socket.IO retries by itself.
        if (!error.data) return;
        socket.off('connect', onConnect);
        socket.close();
        this.socket = undefined;
        reject(fromGatewayError(error.data));
      };
      socket.once('connect', onConnect);
      socket.on('connect_error', onError);
    });
  }

  /**
   * Reads the job's SSE stream, reconnecting with Last-Event-ID until the terminal event. A 4xx
   * (gone, `stream_expired`, a bad seq) ends the stream with that error and is never retried;
   * a dropped or refused connection or a 5xx is retried with capped exponential backoff.
   */
  private async followSse(stream: GenerationStream): Promise<void> {
    const controller = new AbortController();
    this.aborts.add(controller);
    const backoff = this.backoff();
    try {
      while (!stream.isFinished && !controller.signal.aborted) {
        try {
          const response = await fetch(`${this.options.baseUrl}/v1/generations/${encodeURIComponent(stream.jobId)}/events`, {
            headers: { ...this.authHeader(), 'last-event-id': String(stream.lastSeq) },
            signal: controller.signal,
          });
          if (response.status === 204) {
            stream.endBeforeStart(new TokenwireError('already_ended', `generation '${stream.jobId}' ended at seq ${stream.lastSeq}`, 204));
            return;
          }
          if (response.status >= 400 && response.status < 500) {
            stream.fail(await errorFrom(response));
            return;
          }
          if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
          const parser = createParser({
            onEvent: (message) => {
              backoff.reset(); // the resume worked; a later drop starts from the first delay again
              stream.push(JSON.parse(message.data) as StreamEvent);
            },
          });
          const decoder = new TextDecoder();
          for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(bytes, { stream: true }));
        } catch {
          // Dropped or refused: the api may be restarting. Try again from the last seq.
        }
        if (!stream.isFinished && !controller.signal.aborted) await new Promise((r) => setTimeout(r, backoff.next()));
      }
    } finally {
      this.aborts.delete(controller);
    }
  }

  private authHeader(): Record<string, string> {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
  }

  /**
   * A request to the api: a JSON body (or `raw.body` as is), a JSON answer (or text with `raw.raw`).
   * Non-2xx becomes a TokenwireError with the gateway's code and message.
   */
  async http<T>(method: string, path: string, body?: unknown, raw: { body?: string; contentType?: string; raw?: boolean } = {}): Promise<T> {
    const payload = raw.body ?? (body === undefined ? undefined : JSON.stringify(body));
    const contentType = raw.contentType ?? (payload === undefined ? undefined : 'application/json');
    const response = await fetch(`${this.options.baseUrl}${path}`, {
      method,
      headers: { ...this.authHeader(), ...(contentType ? { 'content-type': contentType } : {}) },
      body: payload,
    });
    if (!response.ok) throw await errorFrom(response);
    return (raw.raw ? await response.text() : await response.json()) as T;
  }
}

async function errorFrom(response: Response): Promise<TokenwireError> {
  const body = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  return new TokenwireError(body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${response.status}`, response.status);
}

/** A 4xx: retrying the same request cannot succeed (410 `stream_expired` included). */
function isClientError(error: GatewayError): boolean {
  return error.status !== undefined ? error.status >= 400 && error.status < 500 : error.code !== 'internal_error';
}

function fromGatewayError(error: GatewayError): TokenwireError {
  return new TokenwireError(error.code, error.message, error.status);
}
