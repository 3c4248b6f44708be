/** Job states in which BullMQ still owns a job: queued, running (a stalled one it recovers itself), retrying. */
export const LIVE_JOB_STATES: ReadonlySet<string> = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);
