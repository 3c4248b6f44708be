export * from './provider';
export * from './errors';
export * from './registry';
export * from './demo/demo.provider';
export * from './openai-compatible/openai-compatible.provider';
export * from './openai-compatible/openai-compatible-api';
export * from './wrappers/with-stall-timeout';
