/** The shared command connection (auto-pipelined). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
/** Key and channel builders bound to the configured prefix. */
export const REDIS_KEYS = Symbol('REDIS_KEYS');
