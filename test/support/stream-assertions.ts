import assert from 'node:assert/strict';
import { TERMINAL_EVENT_TYPES, type StreamEvent } from '@tokenwire/contracts';

/** The promise of every stream: seqs 1..n with no gap or duplicate, exactly one terminal event, last. */
export function assertCompleteStream(events: StreamEvent[]): void {
  const seqs = events.map((e) => e.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `seqs must be 1..n without gap or duplicate, got ${seqs.join(',')}`);
  const terminals = events.filter((e) => TERMINAL_EVENT_TYPES.has(e.type));
  assert.equal(terminals.length, 1, `exactly one terminal event, got ${terminals.map((e) => e.type).join(',') || 'none'}`);
  assert.equal(events.at(-1), terminals[0], 'the terminal event is the last one');
}

/** The reply text as a client must show it: text before a `restarted` event is dropped. */
export function visibleText(events: StreamEvent[]): string {
  let text = '';
  for (const event of events) {
    if (event.type === 'restarted') text = '';
    if (event.type === 'chunk') text += event.delta;
  }
  return text;
}
