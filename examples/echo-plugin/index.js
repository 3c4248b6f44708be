// An external Tokenwire provider (spec v1), plain CommonJS: no build step, no Tokenwire import.
// Config: { name: echo, provider: plugin, options: { module: ./examples/echo-plugin, options: { prefix: "echo:" } } }
'use strict';

exports.createProvider = function createProvider(options) {
  const prefix = options.prefix ?? '';
  return {
    specVersion: 'v1',
    id: 'echo-plugin',
    capabilities: { streaming: true, tools: false, usage: true },
    async *stream(request, { signal }) {
      const last = [...request.messages].reverse().find((m) => m.role === 'user');
      const text = `${prefix}${typeof last?.content === 'string' ? last.content : ''}`;
      const words = text.match(/\s*\S+/g) ?? [];
      for (const word of words) {
        await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 5));
        signal.throwIfAborted();
        yield { type: 'text-delta', text: word };
      }
      yield { type: 'usage', usage: { completionTokens: words.length } };
      yield { type: 'finish', reason: 'stop' };
    },
  };
};
