import { Inject, Injectable } from '@nestjs/common';
import type { Namespace, Socket } from 'socket.io';
import { LOGGER, type Logger } from '@tokenwire/core';
import { GenerationsService } from '../generations/generations.service';
import { SocketSubscriptionsService } from '../socket/socket-subscriptions.service';
import { RoomBusService, type RoomAddress } from './room-bus.service';

/** Socket.IO room of a conversation; the tenant is part of the name, so tenants never share one. */
export const roomName = ({ tenantId, conversationId }: RoomAddress) => `tenant:${tenantId}:conversation:${conversationId}`;

/**
 * Conversation rooms on this api process: who is in which room, and following each room's
 * generations. A member follows a generation once, however it learns of it (the join's read
 * of the room's current generation, the room's announcement, or the re-read after the room
 * bus reconnected): the first starts the stream, the others find it already followed.
 */
@Injectable()
export class ConversationRoomsService {
  private namespace!: Namespace;

  constructor(
    private readonly bus: RoomBusService,
    private readonly subscriptions: SocketSubscriptionsService,
    private readonly generations: GenerationsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  attach(namespace: Namespace): void {
    this.namespace = namespace;
    this.bus.onGeneration((room, jobId, recovered) => {
      this.streamToRoom(room, jobId, recovered).catch((error: unknown) => this.logger.error({ err: error, jobId }, 'cannot stream a generation to a room'));
    });
  }

  /** Joins the room; returns the room's running generation, which the socket now follows from its start. */
  async join(socket: Socket, room: RoomAddress): Promise<string | undefined> {
    await socket.join(roomName(room));
    await this.bus.listen(room);
    const jobId = await this.runningGeneration(room);
    if (jobId) await this.followFromStart(socket, room, jobId);
    return jobId;
  }

  async leave(socket: Socket, room: RoomAddress): Promise<void> {
    await socket.leave(roomName(room));
    await this.forgetIfEmpty(room);
  }

  /** Socket.IO has already removed a disconnected socket from its rooms: drop the rooms nobody here is in any more. */
  afterDisconnect(): void {
    for (const room of this.bus.listened()) void this.forgetIfEmpty(room).catch(() => undefined);
  }

  isMember(socket: Socket, room: RoomAddress): boolean {
    return socket.rooms.has(roomName(room));
  }

  /**
   * A room's generation started (or, `recovered`, was found running after the bus reconnected):
   * stream it to this process's members of the room that do not follow it yet.
   */
  private async streamToRoom(room: RoomAddress, jobId: string, recovered: boolean): Promise<void> {
    if (recovered && (await this.runningGeneration(room)) !== jobId) return;
    for (const socketId of this.namespace.adapter.rooms.get(roomName(room)) ?? []) {
      const socket = this.namespace.sockets.get(socketId);
      // followFromStart logs its own failures; the catch only keeps a rejection from ending the process.
      if (socket) this.followFromStart(socket, room, jobId).catch(() => undefined);
    }
  }

  private async followFromStart(socket: Socket, room: RoomAddress, jobId: string): Promise<void> {
    if (this.subscriptions.isFollowing(socket, jobId)) return;
    socket.emit('generation', { conversationId: room.conversationId, jobId });
    try {
      await this.subscriptions.follow(socket, jobId, 0, { keepExisting: true });
    } catch (error) {
      this.logger.error({ err: error, jobId }, 'cannot stream a generation to a socket');
      socket.emit('error', { jobId, seq: 1, type: 'error', code: 'internal_error', message: 'cannot stream this generation' });
    }
  }

  /** The room's current generation while it is queued or running. */
  private async runningGeneration(room: RoomAddress): Promise<string | undefined> {
    const jobId = await this.bus.currentGeneration(room);
    const meta = jobId ? await this.generations.find(room.tenantId, jobId) : undefined;
    return meta && (meta.status === 'queued' || meta.status === 'running') ? jobId! : undefined;
  }

  private async forgetIfEmpty(room: RoomAddress): Promise<void> {
    if (!this.namespace.adapter.rooms.get(roomName(room))?.size) await this.bus.forget(room);
  }
}
