import { Inject, Injectable } from '@nestjs/common';
import type { Namespace, Socket } from 'socket.io';
import { LOGGER, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import type { ApiError } from '../common/api-error';
import { GenerationStreamService, type GenerationSubscription } from '../streams/generation-stream.service';
import { StreamEventEmitter } from './stream-event-emitter';

/** A socket's following of one generation; `subscription` is set once the resume was checked. */
export interface SocketFollow {
  subscription?: GenerationSubscription;
  cancelled: boolean;
}

/** What a socket carries for this service (part of the gateway's socket data). */
export interface FollowingSocketData {
  subscriptions: Map<string, SocketFollow>;
}
type FollowingSocket = Socket<never, never, never, FollowingSocketData>;

/**
 * The generations each socket follows. A socket follows a generation at most once: a client's own
 * `subscribe` replaces the earlier subscription (it says where to resume), a room's announcement
 * leaves an existing one alone. Live events count against `api.maxBufferedBytes`: a socket that owes
 * more is told why (`dropped`, `slow_consumer`) and disconnected; it may resubscribe from its last seq.
 * Replays are paced by the socket draining and never count.
 */
@Injectable()
export class SocketSubscriptionsService {
  private events!: StreamEventEmitter;

  constructor(
    private readonly streams: GenerationStreamService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  attach(namespace: Namespace): void {
    this.events = new StreamEventEmitter(namespace);
  }

  isFollowing(socket: Socket, jobId: string): boolean {
    return this.follows(socket).has(jobId);
  }

  /**
   * Streams the generation after `afterSeq` to the socket. Rejects with the resume's 400/410 (`field`
   * names the input). `{ended: true}`: nothing to send, the caller already has the terminal event.
   * With `keepExisting`, a socket already following the generation is left as it is (`{following: false}`).
   */
  async follow(
    socket: Socket,
    jobId: string,
    afterSeq: number,
    { field = 'afterSeq', keepExisting = false }: { field?: string; keepExisting?: boolean } = {},
  ): Promise<{ ended: boolean; following: boolean }> {
    const follows = this.follows(socket);
    const existing = follows.get(jobId);
    if (existing && keepExisting) return { ended: false, following: false };
    if (existing) this.stop(existing);
    // Registered before the first await, so a second follow racing this one sees it.
    const follow: SocketFollow = { cancelled: false };
    follows.set(jobId, follow);
    const forget = () => follows.get(jobId) === follow && follows.delete(jobId);
    let subscription: GenerationSubscription;
    try {
      subscription = await this.streams.open(jobId, afterSeq, field);
    } catch (error) {
      forget();
      throw error;
    }
    if (follow.cancelled || !socket.connected) {
      subscription.close();
      forget();
      return { ended: false, following: false };
    }
    if (subscription.isClosed) {
      forget();
      return { ended: true, following: false };
    }
    follow.subscription = subscription;
    subscription.onClosed((reason) => {
      forget();
      if (reason) this.dropped(socket, jobId, reason);
    });
    subscription.start({
      write: (event, json, live) => {
        this.events.emit(socket, event, json);
        if (live && this.events.owedBytes(socket) > this.config.api.maxBufferedBytes) this.dropSlowConsumer(socket);
      },
      drained: () => this.events.drained(socket, this.config.api.maxBufferedBytes / 4),
    });
    return { ended: false, following: true };
  }

  unfollow(socket: Socket, jobId: string): void {
    const follow = this.follows(socket).get(jobId);
    if (follow) this.stop(follow);
  }

  /** On disconnect: stops every stream of the socket (a disconnect is not a cancel). */
  unfollowAll(socket: Socket): void {
    for (const follow of [...this.follows(socket).values()]) this.stop(follow);
  }

  private stop(follow: SocketFollow): void {
    follow.cancelled = true;
    follow.subscription?.close();
  }

  private dropped(socket: Socket, jobId: string, reason: ApiError): void {
    if (reason.code === 'slow_consumer') this.dropSlowConsumer(socket, reason.message);
    else if (socket.connected) socket.emit('dropped', { jobId, code: reason.code, message: reason.message });
  }

  /**
   * Tells the socket why, then disconnects it. Nothing more is queued for it, so what it still
   * holds in the api is bounded by the limit; engine.io closes the connection once that was read,
   * or at its heartbeat timeout if the client never reads again.
   */
  private dropSlowConsumer(socket: Socket, message?: string): void {
    if (!socket.connected) return;
    const limit = this.config.api.maxBufferedBytes;
    this.logger.warn({ socketId: socket.id, owedBytes: this.events.owedBytes(socket), limit }, 'slow socket consumer disconnected');
    socket.emit('dropped', {
      code: 'slow_consumer',
      message: message ?? `the client owed more than ${limit} bytes (api.maxBufferedBytes); resubscribe from the last seq received`,
    });
    this.unfollowAll(socket);
    socket.disconnect(true);
  }

  private follows(socket: Socket): Map<string, SocketFollow> {
    const data = (socket as FollowingSocket).data;
    data.subscriptions ??= new Map();
    return data.subscriptions;
  }
}
