import type { Namespace, Socket } from 'socket.io';
import WebSocket from 'ws';
import type { StreamEvent } from '@tokenwire/contracts';

/** socket.io-parser's EVENT packet type. */
const EVENT_PACKET = 2;

/** ws's frame builder, which Socket.IO's adapter uses to pre-frame a broadcast (not in ws's typings). */
const frameOf = (WebSocket as unknown as { Sender?: { frame?: (data: Buffer, options: object) => unknown } }).Sender?.frame;

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

  /** `json` is the event exactly as logged (JSON.stringify of `event`): the packet is built around it, not encoded again. */
  emit(socket: Socket, event: StreamEvent, json: string): void {
    if (!socket.connected) return;
    if (typeof this.adapter._encode !== 'function') {
      // A Socket.IO without the broadcast internals: the plain per-socket emit.
      (socket.emit as (name: string, payload: unknown) => boolean)(event.type, event);
      return;
    }
    let encoded = this.encoded.get(event);
    if (!encoded) {
      encoded = this.encode(event, json);
      this.encoded.set(event, encoded);
    }
    const internals = socket as unknown as SocketInternals;
    internals.notifyOutgoingListeners?.(encoded.packet);
    // Counted first: when the transport is free, writeToEngine flushes at once and resets the count.
    this.queuedFor(socket).bytes += encoded.bytes;
    internals.client.writeToEngine(encoded.frames, encoded.options);
  }

  /**
   * What the adapter's `_encode` gives for a packet without binary data (socket.io-parser's string
   * form: type, namespace, then the JSON of `[name, event]`; and, with ws, the pre-built WebSocket frame
   * of the engine.io message `4<packet>`), built around the event's own JSON. The parser would walk the
   * event for binary data and serialise it again: 1.1-1.5 µs per event (bench/README.md).
   */
  private encode(event: StreamEvent, json: string): Encoded {
    const packet: Encoded['packet'] = { type: EVENT_PACKET, data: [event.type, event], nsp: this.namespace.name };
    const options: Encoded['options'] = { preEncoded: true };
    const nsp = packet.nsp === '/' ? '' : `${packet.nsp},`;
    const text = `${EVENT_PACKET}${nsp}[${JSON.stringify(event.type)},${json}]`;
    if (frameOf) options.wsPreEncodedFrame = frameOf(Buffer.from(`4${text}`), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
    return { packet, frames: [text], options, bytes: Buffer.byteLength(text) };
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
