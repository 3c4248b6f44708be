#!/usr/bin/env node
/**
 * `tokenwire`: the terminal client. Exit codes: 0 ok, 1 the generation or request
 * failed, 2 bad usage, 130 cancelled with Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { TokenwireClient, TokenwireError } from '../tokenwire-client';
import { BATCH_HELP, batchCommand } from './batch';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const GLOBAL_HELP = `tokenwire — talk to a Tokenwire gateway

Usage:
  tokenwire chat -m MODEL [options] "prompt"     stream a reply to stdout (Ctrl-C cancels it upstream)
  tokenwire keys create|list|revoke [options]      manage API keys
  tokenwire batch submit|status|download [options] batch generation
  tokenwire <command> --help                       help for one command

Environment:
  TOKENWIRE_URL       gateway base URL (default http://127.0.0.1:3000), or --url
  TOKENWIRE_API_KEY   API key (or the operator token for keys), or --key
`;

const CHAT_HELP = `tokenwire chat -m MODEL [options] "prompt"

Streams the reply to stdout as tokens arrive. Ctrl-C cancels the generation upstream (exit 130).

Options:
  -m, --model MODEL     model name (required)
  -s, --system TEXT     a system message
      --max-tokens N    limit the reply
      --transport T     socket (default) or sse
      --url URL         gateway base URL
      --key KEY         API key
`;

const KEYS_HELP = `tokenwire keys create|list|revoke [options]

  keys create --tenant ID [--role member|admin] [--name NAME]   prints the new key (shown once)
  keys list [--tenant ID]                                        one key per line: id tenant role name
  keys revoke KEY_ID

Needs the operator token (TOKENWIRE_ADMIN_TOKEN of the gateway) or a tenant admin key in --key / TOKENWIRE_API_KEY.
`;

class UsageError extends Error {}

export async function main(argv: string[], io = { out: process.stdout, err: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      io.out.write(GLOBAL_HELP);
      return command ? EXIT.ok : EXIT.usage;
    }
    if (command === 'chat') return await chat(rest, io);
    if (command === 'keys') return await keys(rest, io);
    if (command === 'batch') return await batch(rest, io);
    throw new UsageError(`unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err.write(`tokenwire: ${error.message}\n\n${GLOBAL_HELP}`);
      return EXIT.usage;
    }
    if (error instanceof TokenwireError) {
      io.err.write(`tokenwire: ${error.message} (${error.code}${error.status ? `, HTTP ${error.status}` : ''})\n`);
      return EXIT.failed;
    }
    io.err.write(`tokenwire: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parse(args: string[], options: OptionSpec): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: { ...options, url: { type: 'string' }, key: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
    return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function clientFrom(values: { url?: unknown; key?: unknown; transport?: unknown }): TokenwireClient {
  const transport = values.transport ?? 'socket';
  if (transport !== 'socket' && transport !== 'sse') throw new UsageError(`--transport must be socket or sse, not "${String(transport)}"`);
  return new TokenwireClient({
    baseUrl: String(values.url ?? process.env.TOKENWIRE_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, ''),
    apiKey: (values.key as string | undefined) ?? process.env.TOKENWIRE_API_KEY,
    transport,
  });
}

async function chat(args: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream }): Promise<number> {
  const { values, positionals } = parse(args, {
    model: { type: 'string', short: 'm' },
    system: { type: 'string', short: 's' },
    'max-tokens': { type: 'string' },
    transport: { type: 'string' },
  });
  if (values.help) {
    io.out.write(CHAT_HELP);
    return EXIT.ok;
  }
  if (!values.model) throw new UsageError('chat needs -m MODEL');
  if (positionals.length === 0) throw new UsageError('chat needs a prompt');
  const maxTokens = values['max-tokens'] === undefined ? undefined : Number(values['max-tokens']);
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens <= 0)) throw new UsageError('--max-tokens must be a positive integer');
  const client = clientFrom(values);
  try {
    const messages = [
      ...(values.system ? [{ role: 'system' as const, content: String(values.system) }] : []),
      { role: 'user' as const, content: positionals.join(' ') },
    ];
    const stream = await client.generate({ model: String(values.model), messages, max_tokens: maxTokens });
    let interrupted = false;
    const onInterrupt = () => {
      interrupted = true;
      void stream.cancel().catch(() => undefined);
    };
    process.once('SIGINT', onInterrupt);
    try {
      for await (const event of stream) {
        if (event.type === 'chunk') io.out.write(event.delta);
        else if (event.type === 'restarted') io.out.write('\n[restarted]\n');
        else if (event.type === 'error') {
          io.out.write('\n');
          io.err.write(`tokenwire: ${event.message} (${event.code})\n`);
          return EXIT.failed;
        } else if (event.type === 'cancelled') {
          io.out.write('\n');
          io.err.write('tokenwire: cancelled\n');
          return interrupted ? EXIT.interrupted : EXIT.failed;
        }
      }
      io.out.write('\n');
      return EXIT.ok;
    } finally {
      process.off('SIGINT', onInterrupt);
    }
  } finally {
    client.close();
  }
}

async function batch(args: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream }): Promise<number> {
  const { values, positionals } = parse(args, { wait: { type: 'boolean' }, errors: { type: 'boolean' } });
  if (values.help || positionals.length === 0) {
    io.out.write(BATCH_HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const [action, target] = positionals;
  return batchCommand(action, target, { wait: values.wait === true, errors: values.errors === true }, clientFrom(values), io, (message) => new UsageError(message));
}

async function keys(args: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream }): Promise<number> {
  const { values, positionals } = parse(args, { tenant: { type: 'string' }, role: { type: 'string' }, name: { type: 'string' } });
  const [action, keyId] = positionals;
  if (values.help || !action) {
    io.out.write(KEYS_HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const client = clientFrom(values);
  switch (action) {
    case 'create': {
      if (values.role && values.role !== 'member' && values.role !== 'admin') throw new UsageError('--role must be member or admin');
      const created = await client.http<{ id: string; key: string; tenantId: string; role: string }>('POST', '/v1/admin/keys', {
        tenantId: values.tenant,
        role: values.role ?? 'member',
        name: values.name,
      });
      io.out.write(`${created.key}\n`);
      io.err.write(`created ${created.id} for tenant ${created.tenantId} (${created.role}); the key is not shown again\n`);
      return EXIT.ok;
    }
    case 'list': {
      const query = values.tenant ? `?tenantId=${encodeURIComponent(String(values.tenant))}` : '';
      const { data } = await client.http<{ data: Array<{ id: string; tenantId: string; role: string; name?: string }> }>('GET', `/v1/admin/keys${query}`);
      for (const key of data) io.out.write(`${key.id}\t${key.tenantId}\t${key.role}\t${key.name ?? ''}\n`);
      return EXIT.ok;
    }
    case 'revoke':
      if (!keyId) throw new UsageError('keys revoke needs a KEY_ID');
      await client.http('DELETE', `/v1/admin/keys/${encodeURIComponent(keyId)}`);
      io.err.write(`revoked ${keyId}\n`);
      return EXIT.ok;
    default:
      throw new UsageError(`unknown keys action "${action}" (create, list, revoke)`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`tokenwire: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
