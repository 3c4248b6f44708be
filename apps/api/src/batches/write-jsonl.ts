import type { Response } from 'express';

/** Writes lines (or raw chunks) as `application/jsonl`, waiting for the socket to drain: a slow reader never grows the api's memory. */
export async function writeJsonl(response: Response, source: AsyncIterable<string | Buffer>, { lines = true } = {}): Promise<void> {
  response.status(200).type('application/jsonl');
  for await (const piece of source) {
    if (!response.write(lines ? `${piece}\n` : piece)) {
      await new Promise<void>((resolve) => {
        const go = () => {
          response.off('drain', go).off('close', go);
          resolve();
        };
        response.on('drain', go).on('close', go);
      });
    }
    if (response.destroyed) return;
  }
  response.end();
}
