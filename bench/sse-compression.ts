/**
 * What SSE compression costs per event, measured on the compressors alone (no sockets):
 * 1,000 open streams, each gets OpenAI chunk events round robin, each event written and
 * flushed at once as SseStream does. Reports CPU µs per event, memory per open stream and
 * compressed bytes per event, for br (quality 5, as served) and gzip (level 6).
 *
 *   npm run build && node bench/dist/sse-compression.js
 */
import zlib from 'node:zlib';
import { once } from 'node:events';

const STREAMS = 1000;
const EVENTS_PER_STREAM = 100;

function chunkEvent(i: number): string {
  const payload = { id: 'chatcmpl-3f1c2a9e', object: 'chat.completion.chunk', created: 1764480000, model: 'demo', choices: [{ index: 0, delta: { content: `${1764480000000 + i}|` }, finish_reason: null }] };
  return `id: ${i}\ndata: ${JSON.stringify(payload)}\n\n`;
}

async function measure(encoding: 'br' | 'gzip'): Promise<{ cpuUsPerEvent: number; kbPerStream: number; bytesPerEvent: number; rawBytesPerEvent: number }> {
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let outBytes = 0;
  let rawBytes = 0;
  const streams = Array.from({ length: STREAMS }, () => {
    const stream = encoding === 'br' ? zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }) : zlib.createGzip({ level: 6 });
    stream.on('data', (chunk: Buffer) => (outBytes += chunk.length));
    return stream;
  });
  const flushKind = encoding === 'br' ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.Z_SYNC_FLUSH;
  // Warm each compressor with one event so its window and state are allocated, as on a live stream.
  for (const stream of streams) {
    stream.write(chunkEvent(0));
    stream.flush(flushKind);
  }
  await new Promise((resolve) => setImmediate(resolve));
  const rssOpen = process.memoryUsage().rss;
  outBytes = 0;
  const cpuBefore = process.cpuUsage();
  for (let round = 1; round <= EVENTS_PER_STREAM; round++) {
    for (const stream of streams) {
      const event = chunkEvent(round);
      rawBytes += event.length;
      stream.write(event);
      stream.flush(flushKind);
    }
    // Let the compressors run (they work on the threadpool and report back on the loop).
    await new Promise((resolve) => setImmediate(resolve));
  }
  for (const stream of streams) stream.end();
  await Promise.all(streams.map((stream) => once(stream, 'end')));
  const cpu = process.cpuUsage(cpuBefore);
  const events = STREAMS * EVENTS_PER_STREAM;
  return {
    cpuUsPerEvent: (cpu.user + cpu.system) / events,
    kbPerStream: (rssOpen - rssBefore) / 1024 / STREAMS,
    bytesPerEvent: outBytes / events,
    rawBytesPerEvent: rawBytes / events,
  };
}

async function main(): Promise<void> {
  console.log(`${STREAMS} open streams × ${EVENTS_PER_STREAM} OpenAI chunk events, each written and flushed at once`);
  console.log('| encoding | CPU per event (µs) | memory per open stream (KB) | bytes per event (identity → compressed) |');
  console.log('|---|---|---|---|');
  for (const encoding of ['gzip', 'br'] as const) {
    const r = await measure(encoding);
    console.log(`| ${encoding} | ${r.cpuUsPerEvent.toFixed(1)} | ${r.kbPerStream.toFixed(0)} | ${r.rawBytesPerEvent.toFixed(0)} → ${r.bytesPerEvent.toFixed(0)} |`);
  }
}

void main();
