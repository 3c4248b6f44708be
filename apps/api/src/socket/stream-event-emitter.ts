import type { Namespace, Socket } from 'socket.io';
import type { StreamEvent } from '@tokenwire/contracts';

/** socket.io-parser's EVENT packet type. */
const EVENT_PACKET = 2;

interface Encoded {
  packet: { type: number; data: [string, StreamEvent]; nsp: string };
  frames: unknown;
  options: { preEncoded: true; wsPreEncodedFrame?: unknown };
  bytes: number;
}

/** The members of Socket.IO that its own room broadcast uses; not in its public typings. */
interface BroadcastInternals {
  adapter: { _encode?: (packet: Encoded['packet'], options: Encoded['options']) => unknown };
}
interface SocketInternals {
  client: { writeToEngine(frames: unknown, options: Encoded['options']): void };
  notifyOutgoingListeners?: (packet: Encoded['packet']) => void;
}
/** engine.io's connection: packets wait in `writeBuffer` while the transport is busy; ws holds what the kernel did not take. */
interface EngineConnection {
  writeBuffer: unknown[];
  transport?: { socket?: { bufferedAmount?: number } };
  on(event: 'flush', listener: () => void): void;
}

/**
 * Emits stream events to sockets, encoding each event once however many sockets follow it.
 * A live event reaches every local subscriber of its generation as the same object, so a
 * generation fanned out to 1,000 sockets costs one JSON encoding and one WebSocket frame, not
 * 1,000 (bench/README.md, "What was changed"). It does what Socket.IO's own room broadcast
 * does (adapter._encode, then client.writeToEngine per socket); each socket still has its
 * own subscription and seq, which a room broadcast could not keep.
 */
export class StreamEventEmitter {
  private readonly encoded = new WeakMap<StreamEvent, Encoded>();
  private readonly adapter: BroadcastInternals['adapter'];
  /** Bytes of stream events waiting in each connection's engine.io writeBuffer (reset when it is flushed to the transport). */
  private readonly queued = new WeakMap<Socket, { bytes: number }>();

  constructor(private readonly namespace: Namespace) {
    this.adapter = namespace.adapter as unknown as BroadcastInternals['adapter'];
  }

  emit(socket: Socket, event: StreamEvent): void {
    if (!socket.connected) return;
    if (typeof this.adapter._encode !== 'function') {
      // A Socket.IO without the broadcast internals: the plain per-socket emit.
      (socket.emit as (name: string, payload: unknown) => boolean)(event.type, event);
      return;
    }
    let encoded = this.encoded.get(event);
    if (!encoded) {
      const packet: Encoded['packet'] = { type: EVENT_PACKET, data: [event.type, event], nsp: this.namespace.name };
      const options: Encoded['options'] = { preEncoded: true };
      const frames = this.adapter._encode(packet, options);
      const bytes = (Array.isArray(frames) ? frames : [frames]).reduce<number>((sum, frame) => sum + byteLength(frame), 0);
      encoded = { packet, frames, options, bytes };
      this.encoded.set(event, encoded);
    }
    const internals = socket as unknown as SocketInternals;
    internals.notifyOutgoingListeners?.(encoded.packet);
    // Counted first: when the transport is free, writeToEngine flushes at once and resets the count.
    this.queuedFor(socket).bytes += encoded.bytes;
    internals.client.writeToEngine(encoded.frames, encoded.options);
  }

  /**
   * Bytes this socket has been sent but its client has not taken yet: packets engine.io still holds
   * plus what the WebSocket could not hand to the kernel. O(1), so it can be checked per event.
   */
  owedBytes(socket: Socket): number {
    const conn = socket.conn as unknown as EngineConnection;
    return this.queuedFor(socket).bytes + (conn.transport?.socket?.bufferedAmount ?? 0);
  }

  /** Resolves once the socket owes at most `lowWater` bytes, or disconnected. */
  async drained(socket: Socket, lowWater: number): Promise<void> {
    while (socket.connected && this.owedBytes(socket) > lowWater) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  private queuedFor(socket: Socket): { bytes: number } {
    let queued = this.queued.get(socket);
    if (!queued) {
      const counter = { bytes: 0 };
      // 'flush' hands the whole writeBuffer to the transport, where ws's bufferedAmount counts it.
      (socket.conn as unknown as EngineConnection).on('flush', () => (counter.bytes = 0));
      this.queued.set(socket, counter);
      queued = counter;
    }
    return queued;
  }
}

function byteLength(frame: unknown): number {
  if (typeof frame === 'string') return Buffer.byteLength(frame);
  if (frame instanceof Uint8Array) return frame.byteLength;
  return 0;
}
