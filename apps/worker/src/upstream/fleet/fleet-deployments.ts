import { Resolver, lookup } from 'node:dns/promises';
import { z } from 'zod';
import type { DeploymentConfig } from '@tokenwire/contracts';
import type { ModelEntry } from '@tokenwire/core';
import { builtInProviderFactories, type LanguageModelProvider, type ProviderFactory } from '@tokenwire/providers';

/** One replica of a model, with its own provider instance. */
export interface Replica {
  id: string;
  provider: LanguageModelProvider;
  weight: number;
  maxConcurrency?: number;
  /** The URL the provider talks to, when it has one (shown in /readyz). */
  url?: string;
  /** Where the health probe goes (undefined: not probed). */
  probeUrl?: string;
  /** Its Prometheus endpoint (undefined: its metrics are not read). */
  metricsUrl?: string;
}

export type ResolveAddresses = (host: string) => Promise<string[]>;

const resolveAll: ResolveAddresses = async (host) => (await lookup(host, { all: true })).map((entry) => entry.address);

/** DNS answers that mean "no such records", not "cannot ask". */
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND', 'NXDOMAIN']);

/** A and AAAA records asked of `nameservers` directly; a name without records resolves to none (the caller keeps the last known replicas). */
export function resolveWith(nameservers: readonly string[]): ResolveAddresses {
  const resolver = new Resolver({ timeout: 2_000, tries: 2 });
  resolver.setServers([...nameservers]);
  return async (host) => {
    const answers = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const failure = answers.find((answer): answer is PromiseRejectedResult => answer.status === 'rejected' && !NO_RECORDS.has((answer.reason as NodeJS.ErrnoException).code ?? ''));
    if (failure) throw failure.reason;
    return answers.flatMap((answer) => (answer.status === 'fulfilled' ? answer.value : []));
  };
}

/**
 * The replicas of one model: its `deployments` as configured, or one per address its
 * `discover.dns` name resolves to (re-resolved by `refresh`). Every provider type works,
 * since a replica is just the model's provider built with that replica's options.
 */
export class FleetDeployments {
  readonly upstreamModel: string;
  private replicas = new Map<string, Replica>();

  constructor(
    readonly model: ModelEntry,
    private readonly factories: Readonly<Record<string, ProviderFactory>> = builtInProviderFactories,
    private readonly resolve: ResolveAddresses = model.discover?.nameservers ? resolveWith(model.discover.nameservers) : resolveAll,
  ) {
    this.upstreamModel = model.upstreamModel ?? model.name;
    model.deployments?.forEach((deployment, index) => {
      const replica = this.build(deployment, index, `models.${model.name}.deployments.${index}`);
      if (this.replicas.has(replica.id)) throw new Error(`models.${model.name}.deployments.${index}.id: "${replica.id}" is used twice; give each deployment its own id`);
      this.replicas.set(replica.id, replica);
    });
  }

  list(): Replica[] {
    return [...this.replicas.values()];
  }

  get(id: string): Replica | undefined {
    return this.replicas.get(id);
  }

  get discovered(): boolean {
    return Boolean(this.model.discover);
  }

  /** Resolves the DNS name again: new addresses join, vanished ones leave. An empty answer keeps the last known replicas. */
  async refresh(): Promise<{ joined: Replica[]; left: string[] }> {
    const discover = this.model.discover;
    if (!discover) return { joined: [], left: [] };
    const addresses = [...new Set(await this.resolve(discover.dns))];
    if (!addresses.length) return { joined: [], left: [] };
    const next = new Map<string, Replica>();
    const joined: Replica[] = [];
    for (const address of addresses) {
      const url = discover.urlTemplate.replaceAll('{address}', address.includes(':') ? `[${address}]` : address);
      const id = hostPort(url) ?? address;
      const existing = this.replicas.get(id);
      if (existing) {
        next.set(id, existing);
        continue;
      }
      const replica = this.build({ id, options: { [discover.urlOption]: url }, weight: 1, maxConcurrency: discover.maxConcurrency }, next.size, `models.${this.model.name}.discover`);
      next.set(id, replica);
      joined.push(replica);
    }
    const left = [...this.replicas.keys()].filter((id) => !next.has(id));
    this.replicas = next;
    return { joined, left };
  }

  private build(deployment: DeploymentConfig, index: number, where: string): Replica {
    const options = { ...this.model.options, ...deployment.options };
    const factory = this.factories[this.model.provider];
    if (!factory) throw new Error(`models.${this.model.name}.provider: unknown provider "${this.model.provider}" (known: ${Object.keys(this.factories).join(', ')})`);
    let provider: LanguageModelProvider;
    try {
      provider = factory(options);
    } catch (error) {
      const detail = error instanceof z.ZodError ? z.prettifyError(error) : (error as Error).message;
      throw new Error(`${where}.options: ${detail}`);
    }
    const url = typeof options.baseUrl === 'string' ? options.baseUrl : typeof options.url === 'string' ? options.url : undefined;
    const probePath = this.model.health.probePath;
    const probeUrl = deployment.probeUrl ?? (probePath && url && /^https?:/.test(url) ? new URL(probePath, url).href : undefined);
    const metricsPath = this.model.health.metricsPath;
    const metricsUrl = metricsPath && url && /^https?:/.test(url) ? new URL(metricsPath, url).href : undefined;
    return {
      id: deployment.id ?? (url ? hostPort(url) : undefined) ?? `d${index}`,
      provider,
      weight: deployment.weight,
      maxConcurrency: deployment.maxConcurrency,
      url,
      probeUrl,
      metricsUrl,
    };
  }
}

function hostPort(url: string): string | undefined {
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}
