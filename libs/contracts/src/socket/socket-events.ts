import type { CancelRequest, RoomRequest, SocketGenerateRequest, SubscribeRequest } from '../generations/generation-request.schema';
import type {
  CancelledEvent,
  ChunkEvent,
  DoneEvent,
  ErrorEvent,
  RestartedEvent,
  UsageEvent,
} from '../stream/stream-event.schema';
import type { ErrorCode, GatewayError } from '../errors/error.schema';
import type { Batch } from '../batches/batch.schema';

/** Socket.IO namespace of the generation stream. */
export const GENERATIONS_NAMESPACE = '/v1/stream';

/** Acks answer `{ok: true, ...}` or `{ok: false, error}` so a client never waits on a silent failure. */
export type Ack<T> = (response: ({ ok: true } & T) | { ok: false; error: GatewayError }) => void;

export interface ClientToServerEvents {
  generate: (request: SocketGenerateRequest, ack: Ack<{ jobId: string }>) => void;
  /** `ended: true`: the caller already has the terminal event (afterSeq is its seq), so nothing follows. */
  subscribe: (request: SubscribeRequest, ack: Ack<{ jobId: string; ended?: boolean }>) => void;
  unsubscribe: (request: CancelRequest, ack: Ack<{ jobId: string }>) => void;
  cancel: (request: CancelRequest, ack: Ack<{ jobId: string; cancelled: boolean }>) => void;
  /** Joins a conversation room of the caller's tenant; a running generation there is replayed, then live. */
  join: (request: RoomRequest, ack: Ack<{ conversationId: string; jobId?: string }>) => void;
  leave: (request: RoomRequest, ack: Ack<{ conversationId: string }>) => void;
  /** Progress of a batch: `batch` events until it is completed or cancelled. */
  'subscribe-batch': (request: { batchId: string }, ack: Ack<{ batchId: string }>) => void;
}

/** Every event a client may send; anything else is answered `unknown_event`. */
export const CLIENT_EVENTS = ['generate', 'subscribe', 'unsubscribe', 'cancel', 'join', 'leave', 'subscribe-batch'] as const satisfies ReadonlyArray<keyof ClientToServerEvents>;
// Fails to compile when an event is added to ClientToServerEvents but not to CLIENT_EVENTS.
const everyClientEventListed: Record<keyof ClientToServerEvents, true> = Object.fromEntries(CLIENT_EVENTS.map((e) => [e, true])) as Record<(typeof CLIENT_EVENTS)[number], true>;
void everyClientEventListed;

/** Announced to a room's members when a generation starts there (they are subscribed to it). */
export interface RoomGenerationEvent {
  conversationId: string;
  jobId: string;
}

/**
 * An `error` about the connection rather than one generation (no `jobId`): the key was revoked,
 * a frame was too large. The server disconnects right after sending it.
 */
export interface ConnectionErrorEvent {
  type: 'error';
  code: GatewayError['code'];
  message: string;
  status?: number;
}

/**
 * The api stopped streaming to this socket before the terminal event: `slow_consumer` (it owed more
 * than `api.maxBufferedBytes`; the socket is disconnected next) or `stream_expired` (the log was trimmed
 * under a replay). Resubscribe from the last seq received; a trimmed log then answers `stream_expired`.
 */
export interface StreamDroppedEvent {
  jobId?: string;
  code: ErrorCode;
  message: string;
}

export interface ServerToClientEvents {
  dropped: (event: StreamDroppedEvent) => void;
  generation: (event: RoomGenerationEvent) => void;
  batch: (event: Batch) => void;
  chunk: (event: ChunkEvent) => void;
  usage: (event: UsageEvent) => void;
  done: (event: DoneEvent) => void;
  /** A generation's error event, or a connection-level one (no `jobId`) just before a disconnect. */
  error: (event: ErrorEvent | ConnectionErrorEvent) => void;
  cancelled: (event: CancelledEvent) => void;
  restarted: (event: RestartedEvent) => void;
}
