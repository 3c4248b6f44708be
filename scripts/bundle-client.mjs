#!/usr/bin/env node
// After `tsc -b`: bundles the client library for browsers (the playground loads it as
// window.Tokenwire) and the playground's Markdown renderer (window.TokenwireMarkdown: marked, then
// DOMPurify, so a reply can never inject script), and makes the CLI executable.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
await build({
  entryPoints: [path.join(root, 'libs/client/dist/index.js')],
  bundle: true,
  format: 'iife',
  globalName: 'Tokenwire',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outfile: path.join(root, 'apps/api/public/tokenwire-client.js'),
  logLevel: 'warning',
});
await build({
  stdin: {
    contents: `import { marked } from 'marked';
import DOMPurify from 'dompurify';
window.TokenwireMarkdown = { render: (text) => DOMPurify.sanitize(marked.parse(text, { async: false, gfm: true, breaks: true })) };`,
    resolveDir: root,
    loader: 'js',
  },
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  outfile: path.join(root, 'apps/api/public/markdown.js'),
  logLevel: 'warning',
});
chmodSync(path.join(root, 'libs/client/dist/cli/tokenwire.js'), 0o755);
