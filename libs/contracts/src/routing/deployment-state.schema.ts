import { z } from 'zod';

/**
 * Where a deployment stands, shared by every worker through Redis:
 * `up`; `busy` (answered 429) or `draining` (answered 503) until a back-off ends;
 * `ejected` after consecutive failures, until one trial request re-admits it;
 * `drained` while its health probe fails. Only `up` (or a back-off that has ended)
 * takes new requests; running streams always finish where they are.
 */
export const deploymentStateSchema = z.enum(['up', 'busy', 'draining', 'ejected', 'drained']);
export type DeploymentState = z.output<typeof deploymentStateSchema>;

/** One deployment as `/readyz` reports it. */
export const deploymentStatusSchema = z.object({
  state: deploymentStateSchema,
  /** Requests running on it now, across all workers. */
  inFlight: z.number().int(),
  /**
   * prefix-affinity: conversations whose last turn ended here less than `routing.turnGapMs` ago and whose
   * next turn has not been routed yet; they count as load (not against `maxConcurrency`).
   */
  betweenTurns: z.number().int(),
  /** Consecutive failures counted towards ejection. */
  failures: z.number().int(),
  /** When a back-off or ejection ends (ms since epoch). */
  until: z.number().int().optional(),
  url: z.string().optional(),
});
export type DeploymentStatus = z.output<typeof deploymentStatusSchema>;

/** A deployment as a worker registers it in the fleet's member hash. */
export const deploymentMemberSchema = z.object({
  url: z.string().optional(),
  weight: z.number(),
  maxConcurrency: z.number().int().optional(),
  seenAt: z.number().int(),
});
export type DeploymentMember = z.output<typeof deploymentMemberSchema>;
