import { Inject, type OnApplicationShutdown } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
  type OnGatewayDisconnect,
} from '@nestjs/websockets';
import type { Namespace, Socket } from 'socket.io';
import {
  GENERATIONS_NAMESPACE,
  cancelRequestSchema,
  socketGenerateRequestSchema,
  subscribeRequestSchema,
  type ClientToServerEvents,
  type GatewayError,
  type ServerToClientEvents,
} from '@tokenwire/contracts';
import { LOGGER, type Logger } from '@tokenwire/core';
import { ApiError } from '../common/api-error';
import { parseOrThrow } from '../common/zod-validation.pipe';
import { DEFAULT_TENANT } from '../auth/tenant.decorator';
import { GenerationsService } from '../generations/generations.service';
import { GenerationStreamService, type GenerationSubscription } from '../streams/generation-stream.service';

type TokenwireSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketState>;
interface SocketState {
  tenantId: string;
  subscriptions: Map<string, GenerationSubscription>;
}
type AckResult<T> = ({ ok: true } & T) | { ok: false; error: GatewayError };

/**
 * Socket.IO: `generate`, `subscribe {jobId, afterSeq}`, `unsubscribe`, `cancel`.
 * Every handler answers through its ack, with `{ok:false, error}` for bad input.
 * A socket that disconnects stops listening but does not cancel: it may resume.
 */
@WebSocketGateway({ namespace: GENERATIONS_NAMESPACE, cors: { origin: true } })
export class GenerationsGateway implements OnGatewayDisconnect, OnApplicationShutdown {
  @WebSocketServer() private readonly namespace!: Namespace;

  constructor(
    private readonly generations: GenerationsService,
    private readonly streams: GenerationStreamService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @SubscribeMessage('generate')
  generate(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const request = parseOrThrow(socketGenerateRequestSchema, body);
      const { id } = await this.generations.create(this.state(socket).tenantId, request);
      // Listening starts after the ack is on its way, so the client knows the id before the first event.
      setImmediate(() => void this.follow(socket, id, 0).catch((error: unknown) => this.emitFailure(socket, id, error)));
      return { jobId: id };
    });
  }

  @SubscribeMessage('subscribe')
  subscribe(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const { jobId, afterSeq } = parseOrThrow(subscribeRequestSchema, body);
      await this.generations.requireOwned(this.state(socket).tenantId, jobId);
      await this.follow(socket, jobId, afterSeq);
      return { jobId };
    });
  }

  @SubscribeMessage('unsubscribe')
  unsubscribe(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string }>> {
    return this.answer(async () => {
      const { jobId } = parseOrThrow(cancelRequestSchema, body);
      this.state(socket).subscriptions.get(jobId)?.close();
      return { jobId };
    });
  }

  @SubscribeMessage('cancel')
  cancel(@ConnectedSocket() socket: TokenwireSocket, @MessageBody() body: unknown): Promise<AckResult<{ jobId: string; cancelled: boolean }>> {
    return this.answer(async () => {
      const { jobId } = parseOrThrow(cancelRequestSchema, body);
      const cancelled = await this.generations.cancel(this.state(socket).tenantId, jobId);
      return { jobId, cancelled };
    });
  }

  handleDisconnect(socket: TokenwireSocket): void {
    for (const subscription of socket.data.subscriptions?.values() ?? []) subscription.close();
  }

  onApplicationShutdown(): void {
    this.namespace?.disconnectSockets(true);
  }

  private state(socket: TokenwireSocket): SocketState {
    socket.data.tenantId ??= DEFAULT_TENANT;
    socket.data.subscriptions ??= new Map();
    return socket.data as SocketState;
  }

  /** Streams a generation to this socket; a second subscribe to the same job replaces the first. */
  private async follow(socket: TokenwireSocket, jobId: string, afterSeq: number): Promise<void> {
    const { subscriptions } = this.state(socket);
    subscriptions.get(jobId)?.close();
    const subscription = await this.streams.subscribe(jobId, afterSeq, (event) => {
      // Socket.IO's typed emit cannot narrow a union of event names; the payload matches by `type`.
      (socket.emit as (name: string, payload: unknown) => boolean)(event.type, event);
    });
    if (!socket.connected) {
      subscription.close();
      return;
    }
    if (subscription.isClosed) return;
    subscriptions.set(jobId, subscription);
    subscription.onClosed(() => subscriptions.get(jobId) === subscription && subscriptions.delete(jobId));
  }

  private emitFailure(socket: TokenwireSocket, jobId: string, error: unknown): void {
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
