import { io, type Socket } from 'socket.io-client';
import { GENERATIONS_NAMESPACE, type ClientToServerEvents, type ServerToClientEvents, type StreamEvent } from '@tokenwire/contracts';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export const OPERATOR_TOKEN = 'operator-token-for-tests-0123456789';

/** Creates an API key through the admin route with the operator token. */
export async function createKey(apiUrl: string, tenantId: string, role: 'admin' | 'member' = 'member'): Promise<string> {
  return (await createKeyWithId(apiUrl, tenantId, role)).key;
}

/** Creates an API key and returns its id too (to revoke it). */
export async function createKeyWithId(apiUrl: string, tenantId: string, role: 'admin' | 'member' = 'member'): Promise<{ id: string; key: string }> {
  const response = await fetch(`${apiUrl}/v1/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${OPERATOR_TOKEN}` },
    body: JSON.stringify({ tenantId, role }),
  });
  if (response.status !== 201) throw new Error(`creating a key answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { id: string; key: string };
}

/** A connected Socket.IO client with a key, or the connect error's message. */
export async function connectSocket(apiUrl: string, token?: string): Promise<ClientSocket> {
  const socket: ClientSocket = io(`${apiUrl}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true, auth: token ? { token } : {}, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
  return socket;
}

/** Records every stream event a socket receives, per job. */
export function recordEvents(socket: ClientSocket): Map<string, StreamEvent[]> {
  const byJob = new Map<string, StreamEvent[]>();
  for (const type of ['chunk', 'usage', 'done', 'error', 'cancelled', 'restarted'] as const) {
    socket.on(type, (event: StreamEvent) => {
      const list = byJob.get(event.jobId) ?? [];
      list.push(event);
      byJob.set(event.jobId, list);
    });
  }
  return byJob;
}

export const hasTerminal = (events?: StreamEvent[]) => events?.some((e) => e.type === 'done' || e.type === 'error' || e.type === 'cancelled');
