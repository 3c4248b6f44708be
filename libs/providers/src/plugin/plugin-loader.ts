import path from 'node:path';
import { z } from 'zod';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider } from '../provider';

export const pluginOptionsSchema = z.object({
  /** An npm package name, or a path (absolute, or relative to the working directory) to a module. */
  module: z.string().min(1),
  /** Passed to the plugin's factory as is. */
  options: z.record(z.string(), z.unknown()).default({}),
});

/**
 * Loads an external provider: a CommonJS module exporting `createProvider(options)`
 * (or a default export function) that returns a provider of spec v1. Anything else is
 * refused with a message saying what is missing.
 */
export function loadProviderPlugin(rawOptions: Record<string, unknown>): LanguageModelProvider {
  const { module: specifier, options } = pluginOptionsSchema.parse(rawOptions);
  const resolved = specifier.startsWith('.') || path.isAbsolute(specifier) ? path.resolve(process.cwd(), specifier) : specifier;
  let exported: { createProvider?: unknown; default?: unknown };
  try {
    exported = require(resolved) as typeof exported;
  } catch (error) {
    throw new Error(`plugin "${specifier}": cannot load it (${(error as Error).message.split('\n')[0]})`);
  }
  const factory = exported.createProvider ?? exported.default ?? exported;
  if (typeof factory !== 'function') throw new Error(`plugin "${specifier}": export a function createProvider(options) (or a default export)`);
  const provider = (factory as (options: Record<string, unknown>) => unknown)(options) as Partial<LanguageModelProvider> | undefined;
  const missing = [
    provider?.specVersion !== PROVIDER_SPEC_VERSION && `specVersion "${PROVIDER_SPEC_VERSION}"`,
    typeof provider?.id !== 'string' && 'an id string',
    typeof provider?.stream !== 'function' && 'a stream(request, { signal }) method',
  ].filter(Boolean);
  if (missing.length) throw new Error(`plugin "${specifier}": the provider it created lacks ${missing.join(', ')}`);
  return provider as LanguageModelProvider;
}
