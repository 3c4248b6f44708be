import type { Namespace, Socket } from 'socket.io';
import type { StreamEvent } from '@tokenwire/contracts';

/** socket.io-parser's EVENT packet type. */
const EVENT_PACKET = 2;

interface Encoded {
  packet: { type: number; data: [string, StreamEvent]; nsp: string };
  frames: unknown;
  options: { preEncoded: true; wsPreEncodedFrame?: unknown };
}

/** The members of Socket.IO that its own room broadcast uses; not in its public typings. */
interface BroadcastInternals {
  adapter: { _encode?: (packet: Encoded['packet'], options: Encoded['options']) => unknown };
}
interface SocketInternals {
  client: { writeToEngine(frames: unknown, options: Encoded['options']): void };
  notifyOutgoingListeners?: (packet: Encoded['packet']) => void;
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
      encoded = { packet, frames: this.adapter._encode(packet, options), options };
      this.encoded.set(event, encoded);
    }
    const internals = socket as unknown as SocketInternals;
    internals.notifyOutgoingListeners?.(encoded.packet);
    internals.client.writeToEngine(encoded.frames, encoded.options);
  }
}
