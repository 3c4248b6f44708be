import { ConfigError } from '@tokenwire/core';
import { createApi } from './api.bootstrap';

createApi().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
