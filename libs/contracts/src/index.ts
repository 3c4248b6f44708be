export * from './chat/chat-request.schema';
export * from './generations/generation-job.schema';
export * from './generations/generation-request.schema';
export * from './stream/stream-event.schema';
export * from './errors/error.schema';
export * from './socket/socket-events';
export * from './redis/redis-keys';
export * from './control/control-message.schema';
