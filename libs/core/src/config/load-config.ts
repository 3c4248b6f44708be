import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { CONFIG_FILE_ENV, ENV_KEYS, tokenwireConfigSchema, type TokenwireConfig, type TokenwireConfigInput } from './config.schema';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Tree = Record<string, unknown>;

/**
 * Builds the config from, lowest to highest precedence: defaults, the YAML file
 * named by TOKENWIRE_CONFIG, environment variables, then `overrides` (tests).
 * A bad value throws a ConfigError naming the key, where it came from and what is allowed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: TokenwireConfigInput = {}): TokenwireConfig {
  const sources = new Map<string, string>();
  const tree: Tree = {};
  const file = env[CONFIG_FILE_ENV];
  if (file) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`${CONFIG_FILE_ENV}=${file}: cannot read the config file: ${(error as Error).message}`);
    }
    if (parsed != null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`${CONFIG_FILE_ENV}=${file}: the file must hold a YAML mapping`);
    }
    deepMerge(tree, (parsed ?? {}) as Tree);
  }
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(tree, path, value);
    sources.set(path.join('.'), `env ${name}=${JSON.stringify(value)}`);
  }
  deepMerge(tree, overrides as Tree);

  const result = tokenwireConfigSchema.safeParse(tree);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(root)';
      // The env variable that set this key or one of its parents (REDIS_SENTINELS for redis.sentinels.0.port).
      const fromEnv = [...sources.entries()].find(([path]) => key === path || key.startsWith(`${path}.`))?.[1];
      const source = fromEnv ?? (file ? `file ${file}` : 'config');
      return `  ${key}: ${issue.message} (from ${source})`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

function deepMerge(target: Tree, source: Tree): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (isPlainObject(value) && isPlainObject(existing)) deepMerge(existing, value);
    else target[key] = value;
  }
}

function isPlainObject(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
