import { createHash } from 'node:crypto';
import type { ChatMessage } from '@tokenwire/contracts';

/**
 * Chained hashes of a conversation's fixed-size chunks, shortest prefix first (the
 * approximate prefix scorer of the Gateway API Inference Extension): chunk i's hash
 * covers chunks 1..i, so equal hashes mean equal prefixes. Only whole chunks count,
 * the tail shorter than a chunk is left out; at most `maxChunks` are hashed.
 */
export function prefixChunkHashes(messages: readonly ChatMessage[], chunkChars: number, maxChunks: number): string[] {
  const text = serialise(messages);
  const count = Math.min(maxChunks, Math.floor(text.length / chunkChars));
  const hashes: string[] = [];
  let previous = '';
  for (let index = 0; index < count; index++) {
    previous = createHash('sha1')
      .update(previous)
      .update(text.slice(index * chunkChars, (index + 1) * chunkChars))
      .digest('base64url')
      .slice(0, 16);
    hashes.push(`p:${previous}`);
  }
  return hashes;
}

/** A client's session key, scoped to its tenant so two tenants' keys never meet. */
export function sessionHash(tenantId: string, sessionKey: string): string {
  return `s:${createHash('sha1').update(tenantId).update('\u0000').update(sessionKey).digest('base64url').slice(0, 16)}`;
}

/** Role and content of each message, in order, with separators that cannot be confused with text boundaries. */
function serialise(messages: readonly ChatMessage[]): string {
  let text = '';
  for (const message of messages) {
    const content = 'content' in message ? message.content : undefined;
    text += `${message.role}\u001e${typeof content === 'string' ? content : JSON.stringify(content ?? null)}`;
    if ('tool_calls' in message && message.tool_calls) text += JSON.stringify(message.tool_calls);
    text += '\u001f';
  }
  return text;
}
