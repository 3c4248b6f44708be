import { Inject, Injectable } from '@nestjs/common';
import type { Socket } from 'socket.io';
import { LOGGER, type Logger } from '@tokenwire/core';
import { ApiError } from '../common/api-error';
import { BatchesService } from '../batches/batches.service';

/** Batches one socket may watch at once: each is a Redis poll, so a socket cannot start thousands. */
export const MAX_BATCH_WATCHES_PER_SOCKET = 16;

/**
 * `subscribe-batch`: a progress poll per (socket, batch). Subscribing to the same batch again
 * keeps the one poll; a poll stops when its batch completes, and every poll of a socket stops
 * when it disconnects.
 */
@Injectable()
export class SocketBatchWatchesService {
  private readonly watches = new Map<string, Map<string, AbortController>>();

  constructor(
    private readonly batches: BatchesService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async watch(socket: Socket, tenantId: string, batchId: string): Promise<void> {
    await this.batches.require(tenantId, batchId);
    let mine = this.watches.get(socket.id);
    if (mine?.has(batchId) || !socket.connected) return;
    if (mine && mine.size >= MAX_BATCH_WATCHES_PER_SOCKET) {
      throw new ApiError(429, 'rate_limited', `a socket may watch at most ${MAX_BATCH_WATCHES_PER_SOCKET} batches at once`, 'batchId');
    }
    if (!mine) this.watches.set(socket.id, (mine = new Map()));
    const stop = new AbortController();
    mine.set(batchId, stop);
    void this.batches
      .watch(tenantId, batchId, (batch) => socket.emit('batch', batch), stop.signal)
      .catch((error: unknown) => this.logger.warn({ err: error, batchId }, 'batch progress poll failed'))
      .finally(() => {
        if (mine.get(batchId) !== stop) return;
        mine.delete(batchId);
        if (!mine.size && this.watches.get(socket.id) === mine) this.watches.delete(socket.id);
      });
  }

  /** Polls running for this socket. */
  count(socket: Socket): number {
    return this.watches.get(socket.id)?.size ?? 0;
  }

  /** Polls running in this process. */
  total(): number {
    let total = 0;
    for (const mine of this.watches.values()) total += mine.size;
    return total;
  }

  stopAll(socket: Socket): void {
    const mine = this.watches.get(socket.id);
    this.watches.delete(socket.id);
    for (const stop of mine?.values() ?? []) stop.abort();
  }
}
