import type { IncomingMessage } from 'node:http';
import { UpstreamHttpError, parseRetryAfter } from '../errors';

/** A WebSocket upgrade answered with an HTTP status: the typed error, with the (bounded) body the server gave as the reason. */
export async function refusedUpgrade(response: IncomingMessage, url: string): Promise<UpstreamHttpError> {
  let body = '';
  response.setEncoding('utf8');
  try {
    for await (const chunk of response) {
      body += chunk as string;
      if (body.length > 4096) break;
    }
  } catch {
    // the reason is optional; the status says enough
  }
  response.destroy();
  const retryAfter = parseRetryAfter([response.headers['retry-after']].flat()[0] ?? null);
  return new UpstreamHttpError(response.statusCode ?? 502, body || `WebSocket upgrade refused by ${url}`, retryAfter);
}
