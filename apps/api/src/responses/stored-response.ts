import type { ChatMessage, ResponseObject } from '@tokenwire/contracts';

/** A Responses-API response as kept in Redis (under its tenant, for the generations' TTL): its request and conversation. */
export interface StoredResponse {
  id: string;
  generationId: string;
  tenantId: string;
  model: string;
  /** Unix seconds. */
  createdAt: number;
  background: boolean;
  store: boolean;
  instructions: string | null;
  previousResponseId: string | null;
  /** The conversation sent to the model, without `instructions` (which do not carry over to a follow-up). */
  messages: ChatMessage[];
  tools: ResponseObject['tools'];
  toolChoice: ResponseObject['tool_choice'];
  parallelToolCalls: boolean;
  temperature: number | null;
  topP: number | null;
  maxOutputTokens: number | null;
  metadata: Record<string, string>;
}
