import { deploymentHealthConfigSchema, routingConfigSchema } from '@tokenwire/contracts';
import { discoverOllamaModels } from '@tokenwire/providers';
import type { TokenwireConfig } from './config.schema';
import type { Logger } from '../logging/logger';

/**
 * Completes the model list at start: models the configured Ollama servers report are
 * added unless a configured model already has that name. api and worker both run it,
 * so they agree on what exists.
 */
export async function resolveModels(config: TokenwireConfig, logger: Logger): Promise<TokenwireConfig> {
  if (!config.ollama.discover.length) return config;
  const { models, unreachable } = await discoverOllamaModels(config.ollama.discover);
  // Info, not warn: probing the default local Ollama finds nothing on most machines.
  if (unreachable.length) logger.info({ unreachable }, 'no Ollama answered at these URLs; their models are not served');
  const known = new Set(config.models.map((m) => m.name));
  const added = models.filter((m) => !known.has(m.name)).map((m) => ({ ...m, fallbacks: [] as string[], routing: routingConfigSchema.parse({}), health: deploymentHealthConfigSchema.parse({}) }));
  if (added.length) logger.info({ models: added.map((m) => m.name) }, 'models discovered on Ollama');
  return { ...config, models: [...config.models, ...added] };
}
