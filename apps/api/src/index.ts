export { createApi, type RunningApi } from './api.bootstrap';
export { ApiModule } from './api.module';
export { GenerationStreamService, GenerationSubscription } from './streams/generation-stream.service';
export { RoomBusService } from './rooms/room-bus.service';
export { SocketBatchWatchesService, MAX_BATCH_WATCHES_PER_SOCKET } from './socket/socket-batch-watches.service';
export { LiveChannelSubscriber } from './streams/live-channel-subscriber';
