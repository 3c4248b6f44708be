export { createApi, type RunningApi } from './api.bootstrap';
export { ApiModule } from './api.module';
export { GenerationStreamService, GenerationSubscription } from './streams/generation-stream.service';
