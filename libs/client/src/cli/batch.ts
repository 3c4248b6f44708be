import { readFileSync } from 'node:fs';
import type { Batch } from '@tokenwire/contracts';
import type { TokenwireClient } from '../tokenwire-client';

export const BATCH_HELP = `tokenwire batch submit|status|download [options]

  batch submit FILE [--wait]      upload a JSONL file of {custom_id, body}; prints the batch id
                                  (--wait: show a progress bar until it ends)
  batch status BATCH_ID           status and counts
  batch download BATCH_ID [--errors]   the results (or the failures) as JSONL on stdout
`;

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

function bar(batch: Batch): string {
  const { total, completed, failed, cancelled } = batch.request_counts;
  const done = completed + failed + cancelled;
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} (${failed} failed, ${cancelled} cancelled) ${batch.status}`;
}

/** `tokenwire batch …`; returns the exit code (1 when the batch ended with failures). */
export async function batchCommand(action: string | undefined, target: string | undefined, flags: { wait?: boolean; errors?: boolean }, client: TokenwireClient, io: Io, usage: (message: string) => Error): Promise<number> {
  switch (action) {
    case 'submit': {
      if (!target) throw usage('batch submit needs a FILE');
      let text: string;
      try {
        text = readFileSync(target, 'utf8');
      } catch (error) {
        throw usage(`cannot read ${target}: ${(error as Error).message}`);
      }
      const batch = await client.http<Batch>('POST', '/v1/batches', undefined, { body: text, contentType: 'application/jsonl' });
      io.out.write(`${batch.id}\n`);
      if (!flags.wait) return 0;
      return watch(client, batch.id, io);
    }
    case 'status': {
      if (!target) throw usage('batch status needs a BATCH_ID');
      const batch = await client.http<Batch>('GET', `/v1/batches/${encodeURIComponent(target)}`);
      io.out.write(`${bar(batch)}\n`);
      return 0;
    }
    case 'download': {
      if (!target) throw usage('batch download needs a BATCH_ID');
      const text = await client.http<string>('GET', `/v1/batches/${encodeURIComponent(target)}/${flags.errors ? 'errors' : 'output'}`, undefined, { raw: true });
      io.out.write(text);
      return 0;
    }
    default:
      throw usage(`unknown batch action "${action ?? ''}" (submit, status, download)`);
  }
}

/** Polls until the batch ends, drawing a progress bar on stderr. */
async function watch(client: TokenwireClient, id: string, io: Io): Promise<number> {
  for (;;) {
    const batch = await client.http<Batch>('GET', `/v1/batches/${encodeURIComponent(id)}`);
    io.err.write(io.err.isTTY ? `\r${bar(batch)}` : `${bar(batch)}\n`);
    if (batch.status === 'completed' || batch.status === 'cancelled') {
      if (io.err.isTTY) io.err.write('\n');
      return batch.request_counts.failed > 0 || batch.status === 'cancelled' ? 1 : 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
