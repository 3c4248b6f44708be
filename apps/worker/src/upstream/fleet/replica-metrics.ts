import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** What a replica's own metrics say about its load; undefined when it does not export that series. */
export interface ReplicaSignals {
  /** Requests queued inside the replica (not yet scheduled). */
  waiting?: number;
  /** KV-cache usage, 0-1. */
  kvCacheUsage?: number;
}

// The series each inference server exports, newest names first (vLLM renamed gpu_cache_usage_perc in v0.10).
const WAITING = ['vllm:num_requests_waiting', 'sglang:num_queue_reqs', 'tgi_queue_size'];
const KV_CACHE_USAGE = ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'sglang:token_usage'];

/** Reads the queue length (summed over series: one per engine) and KV-cache usage (the fullest) from Prometheus text. */
export function replicaSignals(text: string): ReplicaSignals {
  const families = new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
  const values = (names: string[]) => {
    const family = names.map((name) => families.get(name)).find(Boolean);
    return family?.metrics.map((sample) => Number(sample.value)).filter(Number.isFinite);
  };
  const waiting = values(WAITING);
  const usage = values(KV_CACHE_USAGE);
  return {
    ...(waiting?.length ? { waiting: waiting.reduce((sum, value) => sum + value, 0) } : {}),
    ...(usage?.length ? { kvCacheUsage: Math.min(1, Math.max(0, ...usage)) } : {}),
  };
}

/** The load a replica's signals add to its in-flight count: its queue, plus its KV-cache usage × `kvCacheWeight`. */
export function extraLoad(signals: ReplicaSignals, kvCacheWeight: number): number | undefined {
  if (signals.waiting === undefined && signals.kvCacheUsage === undefined) return undefined;
  return Math.max(0, signals.waiting ?? 0) + (signals.kvCacheUsage ?? 0) * kvCacheWeight;
}
