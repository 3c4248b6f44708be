import { Inject, type OnApplicationShutdown } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
  type OnGatewayDisconnect,
  type OnGatewayInit,
} from '@nestjs/websockets';
import type { Namespace, Socket } from 'socket.io';
import {
  GENERATIONS_NAMESPACE,
  cancelRequestSchema,
  roomRequestSchema,
  socketGenerateRequestSchema,
  subscribeBatchRequestSchema,
  subscribeRequestSchema,
  type ClientToServerEvents,
  type GatewayError,
  type ServerToClientEvents,
} from '@tokenwire/contracts';
import { LOGGER, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ApiError } from '../common/api-error';
import { parseOrThrow } from '../common/zod-validation.pipe';
import { GenerationsService } from '../generations/generations.service';
import { BatchesService } from '../batches/batches.service';
import { RoomBusService, type RoomAddress } from '../rooms/room-bus.service';
import { GenerationStreamService, type GenerationSubscription } from '../streams/generation-stream.service';
import { SocketAuthService } from './socket-auth.service';
import { StreamEventEmitter } from './stream-event-emitter';

interface SocketState {
  tenantId: string;
  subscriptions: Map<string, GenerationSubscription>;
}
type TokenwireSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketState>;
type AckResult<T> = ({ ok: true } & T) | { ok: false; error: GatewayError };

/** Socket.IO room of a conversation; the tenant is part of the name, so tenants never share one. */
const roomName = ({ tenantId, conversationId }: RoomAddress) => `tenant:${tenantId}:conversation:${conversationId}`;

/**
 * Socket.IO: `generate`, `subscribe {jobId, afterSeq}`, `unsubscribe`, `cancel`, `join`/`leave`
 * a conversation room. The handshake authenticates (`auth.token`) before any event is handled.
 * Every handler answers through its ack, `{ok:false, error}` for bad input. A socket that
 * disconnects stops listening but does not cancel: it may resume.
 */
@WebSocketGateway({ namespace: GENERATIONS_NAMESPACE, cors: { origin: true } })
export class GenerationsGateway implements OnGatewayInit, OnGatewayDisconnect, OnApplicationShutdown {
  @WebSocketServer() private readonly namespace!: Namespace;
  private events!: StreamEventEmitter;

  constructor(
    private readonly generations: GenerationsService,
    private readonly streams: GenerationStreamService,
    private readonly rooms: RoomBusService,
    private readonly socketAuth: SocketAuthService,
    private readonly batches: BatchesService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  afterInit(namespace: Namespace): void {
    this.events = new StreamEventEmitter(namespace);
    this.socketAuth.attach(namespace);
    namespace.use((socket, next) => {
      (socket as TokenwireSocket).data.subscriptions = new Map();
      next();
    });
    this.rooms.onGeneration((room, jobId) => this.streamToRoom(room, jobId));
  }

  @SubscribeMessage('generate')
  generate(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const { conversationId, ...request } = parseOrThrow(socketGenerateRequestSchema, body);
      const room = conversationId ? { tenantId: socket.data.tenantId, conversationId } : undefined;
      if (room && !socket.rooms.has(roomName(room))) {
        throw new ApiError(400, 'invalid_request', `conversationId: join conversation '${conversationId}' first`, 'conversationId');
      }
      const { id } = await this.generations.create(socket.data.tenantId, request);
      if (room) await this.rooms.announce(room, id); // every member, on every api process, follows it
      // Listening starts after the ack is on its way, so the client knows the id before the first event.
      else setImmediate(() => void this.follow(socket, id, 0).catch((error: unknown) => this.streamFailed(socket, id, error)));
      return { jobId: id };
    });
  }

  @SubscribeMessage('subscribe')
  subscribe(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const { jobId, afterSeq } = parseOrThrow(subscribeRequestSchema, body);
      await this.generations.requireOwned(socket.data.tenantId, jobId);
      await this.follow(socket, jobId, afterSeq);
      return { jobId };
    });
  }

  @SubscribeMessage('unsubscribe')
  unsubscribe(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const { jobId } = parseOrThrow(cancelRequestSchema, body);
      socket.data.subscriptions.get(jobId)?.close();
      return { jobId };
    });
  }

  @SubscribeMessage('cancel')
  cancel(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string; cancelled: boolean }>> {
    return this.answer(async () => {
      const { jobId } = parseOrThrow(cancelRequestSchema, body);
      const cancelled = await this.generations.cancel(socket.data.tenantId, jobId);
      return { jobId, cancelled };
    });
  }

  @SubscribeMessage('join')
  join(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ conversationId: string; jobId?: string }>> {
    return this.answer(async () => {
      const { conversationId } = parseOrThrow(roomRequestSchema, body);
      const room = { tenantId: socket.data.tenantId, conversationId };
      await socket.join(roomName(room));
      await this.rooms.listen(room);
      // A late joiner gets the room's running generation from its first event, then live.
      const jobId = await this.rooms.currentGeneration(room);
      const meta = jobId ? await this.generations.find(socket.data.tenantId, jobId) : undefined;
      if (jobId && meta && (meta.status === 'queued' || meta.status === 'running')) {
        socket.emit('generation', { conversationId, jobId });
        await this.follow(socket, jobId, 0);
        return { conversationId, jobId };
      }
      return { conversationId };
    });
  }

  @SubscribeMessage('leave')
  leave(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ conversationId: string }>> {
    return this.answer(async () => {
      const { conversationId } = parseOrThrow(roomRequestSchema, body);
      const room = { tenantId: socket.data.tenantId, conversationId };
      await socket.leave(roomName(room));
      await this.forgetIfEmpty(room);
      return { conversationId };
    });
  }

  @SubscribeMessage('subscribe-batch')
  subscribeBatch(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ batchId: string }>> {
    return this.answer(async () => {
      const { batchId } = parseOrThrow(subscribeBatchRequestSchema, body);
      const { tenantId } = socket.data;
      await this.batches.require(tenantId, batchId);
      const stop = new AbortController();
      socket.once('disconnect', () => stop.abort());
      void this.batches.watch(tenantId, batchId, (batch) => socket.emit('batch', batch), stop.signal).catch(() => undefined);
      return { batchId };
    });
  }

  handleDisconnect(socket: TokenwireSocket): void {
    for (const subscription of socket.data.subscriptions?.values() ?? []) subscription.close();
    // Socket.IO has already removed the socket from its rooms: drop the rooms nobody here is in any more.
    for (const channel of this.rooms.listened()) void this.forgetIfEmpty(channel).catch(() => undefined);
  }

  onApplicationShutdown(): void {
    this.namespace?.disconnectSockets(true);
  }

  /** A room's generation started: stream it to this process's members of the room. */
  private streamToRoom(room: RoomAddress, jobId: string): void {
    const members = this.namespace.adapter.rooms.get(roomName(room));
    for (const socketId of members ?? []) {
      const socket = this.namespace.sockets.get(socketId) as TokenwireSocket | undefined;
      if (!socket) continue;
      socket.emit('generation', { conversationId: room.conversationId, jobId });
      void this.follow(socket, jobId, 0).catch((error: unknown) => this.streamFailed(socket, jobId, error));
    }
  }

  private async forgetIfEmpty(room: RoomAddress): Promise<void> {
    if (!this.namespace.adapter.rooms.get(roomName(room))?.size) await this.rooms.forget(room);
  }

  /** Streams a generation to this socket; a second subscribe to the same job replaces the first. */
  private async follow(socket: TokenwireSocket, jobId: string, afterSeq: number): Promise<void> {
    const { subscriptions } = socket.data;
    subscriptions.get(jobId)?.close();
    const subscription = await this.streams.subscribe(jobId, afterSeq, (event) => this.events.emit(socket, event));
    if (!socket.connected) {
      subscription.close();
      return;
    }
    if (subscription.isClosed) return;
    subscriptions.set(jobId, subscription);
    subscription.onClosed(() => subscriptions.get(jobId) === subscription && subscriptions.delete(jobId));
  }

  private streamFailed(socket: TokenwireSocket, jobId: string, error: unknown): void {
    this.logger.error({ err: error, jobId }, 'cannot stream a generation to a socket');
    socket.emit('error', { jobId, seq: 1, type: 'error', code: 'internal_error', message: 'cannot stream this generation' });
  }

  private async answer<T extends object>(handler: () => Promise<T>): Promise<AckResult<T>> {
    try {
      return { ok: true, ...(await handler()) };
    } catch (error) {
      if (error instanceof ApiError) return { ok: false, error: error.toGatewayError() };
      this.logger.error({ err: error }, 'socket handler failed');
      return { ok: false, error: { code: 'internal_error', message: 'internal error' } };
    }
  }
}
