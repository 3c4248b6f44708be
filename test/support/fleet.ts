import { FakeOpenAIServer, type FakeOpenAIScript } from './fake-openai-server';

/** Several fake OpenAI-compatible replicas, each answering with its own name (so a reply says who served it). */
export class FakeFleet {
  readonly replicas: FakeOpenAIServer[] = [];
  /** Per-replica behaviour on top of "answer with my name". */
  behave: (replica: number, body: Record<string, unknown>) => FakeOpenAIScript = () => ({});

  async start(count: number): Promise<this> {
    for (let index = 0; index < count; index++) {
      const server = new FakeOpenAIServer();
      await server.start();
      server.script = (body) => ({ tokens: [`r${index}`], ...this.behave(index, body) });
      this.replicas.push(server);
    }
    return this;
  }

  /** `deployments` entries for the model config; ids are r0, r1, ... */
  deployments(extra: (index: number) => Record<string, unknown> = () => ({})): Array<Record<string, unknown>> {
    return this.replicas.map((server, index) => ({ id: `r${index}`, options: { baseUrl: server.baseUrl }, ...extra(index) }));
  }

  /** Requests each replica received. */
  counts(): number[] {
    return this.replicas.map((server) => server.requests.length);
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((server) => server.stop().catch(() => undefined)));
  }
}

export interface ChatOptions {
  messages?: Array<{ role: string; content: string }>;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
}

/** A non-streaming chat completion through the gateway; returns the reply text (the serving replica's name) or throws with the error. */
export async function chat(gatewayUrl: string, model: string, options: ChatOptions = {}): Promise<string> {
  return (await chatReply(gatewayUrl, model, options)).text;
}

/** As `chat`, with the generation id (the job id the workers log). */
export async function chatReply(gatewayUrl: string, model: string, options: ChatOptions = {}): Promise<{ text: string; jobId: string }> {
  const response = await fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({ model, messages: options.messages ?? [{ role: 'user', content: 'hi' }], ...options.body }),
  });
  const json = (await response.json()) as { id: string; choices?: Array<{ message: { content: string } }>; error?: { message: string } };
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${json.error?.message ?? JSON.stringify(json)}`);
  return { text: json.choices![0]!.message.content, jobId: json.id.replace(/^chatcmpl-/, '') };
}

/** A conversation of `turns` turns over a long shared system prompt, as the messages of turn `turn`. */
export function conversation(id: string, turn: number, systemPrompt: string): Array<{ role: string; content: string }> {
  const messages = [{ role: 'system', content: systemPrompt }];
  for (let t = 0; t <= turn; t++) {
    messages.push({ role: 'user', content: `conversation ${id}, question ${t}: ${'tell me more about this topic '.repeat(6)}` });
    if (t < turn) messages.push({ role: 'assistant', content: `answer ${t} of ${id}: ${'here is a long answer '.repeat(6)}` });
  }
  return messages;
}

export interface DeploymentView {
  state: string;
  inFlight: number;
  betweenTurns: number;
  failures: number;
  until?: number;
  url?: string;
}

/** `GET /readyz`'s view of one fleet model's deployments. */
export async function readyDeployments(gatewayUrl: string, model: string): Promise<Record<string, DeploymentView>> {
  const body = (await (await fetch(`${gatewayUrl}/readyz`)).json()) as { deployments?: Record<string, Record<string, DeploymentView>> };
  return body.deployments?.[model] ?? {};
}

/** Starts a generation through the job API; returns its id. */
export async function startGeneration(gatewayUrl: string, model: string, content: string): Promise<string> {
  const response = await fetch(`${gatewayUrl}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });
  if (response.status !== 202) throw new Error(`POST /v1/generations answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}
