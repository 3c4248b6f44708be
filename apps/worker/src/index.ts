export { createWorker } from './worker.bootstrap';
export { WorkerModule } from './worker.module';
