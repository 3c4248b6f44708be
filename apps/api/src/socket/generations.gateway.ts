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
import { ConversationRoomsService } from '../rooms/conversation-rooms.service';
import { RoomBusService } from '../rooms/room-bus.service';
import { SocketAuthService } from './socket-auth.service';
import { SocketBatchWatchesService } from './socket-batch-watches.service';
import { SocketSubscriptionsService, type FollowingSocketData } from './socket-subscriptions.service';

interface SocketState extends FollowingSocketData {
  tenantId: string;
}
type TokenwireSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketState>;
type AckResult<T> = ({ ok: true } & T) | { ok: false; error: GatewayError };

/**
 * Socket.IO: `generate`, `subscribe {jobId, afterSeq}`, `unsubscribe`, `cancel`, `join`/`leave`
 * a conversation room. The handshake authenticates (`auth.token`) before any event is handled.
 * Every handler answers through its ack, `{ok:false, error}` for bad input. A socket that
 * disconnects stops listening but does not cancel: it may resume.
 */
@WebSocketGateway({ namespace: GENERATIONS_NAMESPACE, cors: { origin: true } })
export class GenerationsGateway implements OnGatewayInit, OnGatewayDisconnect, OnApplicationShutdown {
  @WebSocketServer() private readonly namespace!: Namespace;

  constructor(
    private readonly generations: GenerationsService,
    private readonly subscriptions: SocketSubscriptionsService,
    private readonly rooms: ConversationRoomsService,
    private readonly roomBus: RoomBusService,
    private readonly socketAuth: SocketAuthService,
    private readonly batchWatches: SocketBatchWatchesService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  afterInit(namespace: Namespace): void {
    this.socketAuth.attach(namespace);
    this.subscriptions.attach(namespace);
    this.rooms.attach(namespace);
    namespace.use((socket, next) => {
      (socket as TokenwireSocket).data.subscriptions = new Map();
      next();
    });
  }

  @SubscribeMessage('generate')
  generate(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const { conversationId, ...request } = parseOrThrow(socketGenerateRequestSchema, body);
      const room = conversationId ? { tenantId: socket.data.tenantId, conversationId } : undefined;
      if (room && !this.rooms.isMember(socket, room)) {
        throw new ApiError(400, 'invalid_request', `conversationId: join conversation '${conversationId}' first`, 'conversationId');
      }
      const { id } = await this.generations.create(socket.data.tenantId, request, { sessionKey: conversationId });
      if (room) await this.roomBus.announce(room, id); // every member, on every api process, follows it
      // Listening starts after the ack is on its way, so the client knows the id before the first event.
      else setImmediate(() => void this.subscriptions.follow(socket, id, 0).catch((error: unknown) => this.streamFailed(socket, id, error)));
      return { jobId: id };
    });
  }

  @SubscribeMessage('subscribe')
  subscribe(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string; ended?: boolean }>> {
    return this.answer(async () => {
      const { jobId, afterSeq } = parseOrThrow(subscribeRequestSchema, body);
      await this.generations.requireOwned(socket.data.tenantId, jobId);
      const { ended } = await this.subscriptions.follow(socket, jobId, afterSeq);
      return ended ? { jobId, ended } : { jobId };
    });
  }

  @SubscribeMessage('unsubscribe')
  unsubscribe(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const { jobId } = parseOrThrow(cancelRequestSchema, body);
      this.subscriptions.unfollow(socket, jobId);
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
      const jobId = await this.rooms.join(socket, { tenantId: socket.data.tenantId, conversationId });
      return jobId ? { conversationId, jobId } : { conversationId };
    });
  }

  @SubscribeMessage('leave')
  leave(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ conversationId: string }>> {
    return this.answer(async () => {
      const { conversationId } = parseOrThrow(roomRequestSchema, body);
      await this.rooms.leave(socket, { tenantId: socket.data.tenantId, conversationId });
      return { conversationId };
    });
  }

  @SubscribeMessage('subscribe-batch')
  subscribeBatch(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ batchId: string }>> {
    return this.answer(async () => {
      const { batchId } = parseOrThrow(subscribeBatchRequestSchema, body);
      await this.batchWatches.watch(socket, socket.data.tenantId, batchId);
      return { batchId };
    });
  }

  handleDisconnect(socket: TokenwireSocket): void {
    this.subscriptions.unfollowAll(socket);
    this.batchWatches.stopAll(socket);
    this.rooms.afterDisconnect();
  }

  onApplicationShutdown(): void {
    this.namespace?.disconnectSockets(true);
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
