import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's package; `CHROMIUM_PATH` overrides it. */
const SYSTEM_CHROMIUM = '/usr/bin/chromium';

// As the machine's notes advise: no background networking (the sandbox has none).
const QUIET_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Headless Chromium for the browser tests: `CHROMIUM_PATH` when set, else the system's chromium, else the one
 * the `@sparticuz/chromium` devDependency ships (unpacked into the temp dir on first use, ~5 s), so that
 * `npm ci && npm test` needs no system browser.
 */
export async function launchChromium(): Promise<Browser> {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit !== undefined) {
    if (!existsSync(explicit)) throw new Error(`CHROMIUM_PATH=${explicit} does not exist: unset it to use the system's or the npm-shipped Chromium`);
    return chromium.launch({ executablePath: explicit, headless: true, args: QUIET_ARGS });
  }
  if (existsSync(SYSTEM_CHROMIUM)) return chromium.launch({ executablePath: SYSTEM_CHROMIUM, headless: true, args: QUIET_ARGS });
  return launchShippedChromium();
}

async function launchShippedChromium(): Promise<Browser> {
  const { default: Chromium, inflate } = await import('@sparticuz/chromium');
  const executablePath = await Chromium.executablePath();
  // The package is built for Amazon Linux and brings the NSS/expat libraries it links against; a bare Debian
  // lacks them, so they go first on the browser's library path (only the browser's, not this process's).
  const bin = path.resolve(require.resolve('@sparticuz/chromium'), '../../bin');
  const libraries = path.join(await inflate(path.join(bin, 'al2023.tar.br')), 'lib');
  const env = { ...process.env, LD_LIBRARY_PATH: [libraries, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') } as Record<string, string>;
  return chromium.launch({ executablePath, headless: true, args: QUIET_ARGS, env });
}
