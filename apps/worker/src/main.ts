import { ConfigError } from '@tokenwire/core';
import { createWorker } from './worker.bootstrap';

createWorker().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
