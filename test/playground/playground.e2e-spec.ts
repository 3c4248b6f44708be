import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { DemoProvider } from '@tokenwire/providers';
import { launchChromium } from '../support/browser';
import { startGateway, type TestGateway } from '../support/gateway';
import { TcpProxy } from '../support/tcp-proxy';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';

const DEMO = { tokenDelayMs: 30, tokens: 40 };
const MEDIUM = { tokenDelayMs: 40, tokens: 120 };
const SLOW = { tokenDelayMs: 60, tokens: 300 };
// Long enough (10 s) that a reload and re-join finish while it runs, even on a loaded machine.
const LONG = { tokenDelayMs: 50, tokens: 200 };
const expected = (prompt: string, options = DEMO) => new DemoProvider(options).replyTokens([{ role: 'user', content: prompt }]).join('');
// PLAYGROUND_SCREENSHOTS=docs refreshes the README's pictures.
const SCREENSHOTS = process.env.PLAYGROUND_SCREENSHOTS;

async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(path.resolve(SCREENSHOTS), { recursive: true });
  await page.screenshot({ path: path.join(path.resolve(SCREENSHOTS), name) });
}

/** The playground in real headless Chromium (the system's, or the npm-shipped one), driven by playwright-core. */
describe('browser playground', () => {
  let gateway: TestGateway;
  let browser: Browser;
  let key: string;

  before(async () => {
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      models: [
        { name: 'demo', provider: 'demo', options: DEMO },
        { name: 'medium', provider: 'demo', options: MEDIUM },
        { name: 'slow', provider: 'demo', options: SLOW },
        { name: 'long', provider: 'demo', options: LONG },
      ],
    });
    key = await createKey(gateway.url, 'playground-tenant');
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gateway?.close();
  });

  async function openJoined(conversation: string, author: string, baseUrl = gateway.url): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    await page.goto(baseUrl);
    await page.fill('[name=author]', author);
    await page.fill('[name=key]', key);
    await page.fill('[name=conversation]', conversation);
    await page.click('[name=join]');
    await page.waitForSelector(`#status:has-text("${conversation}")`);
    return page;
  }
  async function send(page: Page, model: string, prompt: string): Promise<void> {
    await page.selectOption('[name=model]', model);
    await page.fill('[name=prompt]', prompt);
    await page.click('[name=send]');
  }
  const lastMessage = (page: Page) => page.locator('.message').last();
  const lastPrompt = (page: Page) => page.locator('.prompt').last();
  const replyText = async (page: Page) => ((await lastMessage(page).locator('.text').textContent()) ?? '').trim();

  it('every member sees the prompt with its author, and the reply with its TTFT and tokens/s', async () => {
    const [alice, bob] = [await openJoined('team-1', 'Alice'), await openJoined('team-1', 'Bob')];
    await send(alice, 'demo', 'hello team');
    for (const page of [alice, bob]) {
      await page.waitForSelector('.message[data-status=done]', { timeout: 15_000 });
      assert.equal(await replyText(page), expected('hello team'));
      await page.waitForFunction("document.querySelector('.prompt .author')?.textContent === 'Alice'");
      assert.equal(await lastPrompt(page).locator('.body').textContent(), 'hello team');
      const message = lastMessage(page);
      assert.ok(Number(await message.getAttribute('data-ttft-ms')) >= 0, 'TTFT measured');
      assert.ok(Number(await message.getAttribute('data-tokens-per-second')) > 0, 'tokens/s measured');
      assert.match((await message.locator('.stats').textContent()) ?? '', /^TTFT \d+ ms · \d+\.\d tokens\/s · 40 tokens$/);
    }
    assert.equal(await alice.locator('.prompt.mine').count(), 1, "Alice's own prompt is marked as hers");
    assert.equal(await bob.locator('.prompt.mine').count(), 0);

    await send(bob, 'demo', 'What does **Tokenwire** do? Answer in `one` line.');
    await alice.waitForFunction("document.querySelectorAll('.message[data-status=done]').length === 2", undefined, { timeout: 15_000 });
    assert.equal(await lastPrompt(alice).locator('.author').textContent(), 'Bob');
    await screenshot(alice, 'playground.png');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('replies render Markdown, and nothing in them runs as script', async () => {
    const page = await openJoined('team-md', 'Mallory');
    const prompt = '**bold** `code` <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> [link](javascript:window.__pwned=3)';
    await send(page, 'demo', prompt);
    await page.waitForSelector('.message[data-status=done]', { timeout: 15_000 });
    const reply = lastMessage(page).locator('.text');
    assert.equal(await reply.locator('strong').first().textContent(), 'bold');
    assert.equal(await reply.locator('code').first().textContent(), 'code');
    assert.equal(await reply.locator('script').count(), 0, 'no script element');
    assert.equal(await reply.locator('[onerror]').count(), 0, 'no event handler attribute');
    assert.equal(await reply.locator('a[href^="javascript:"]').count(), 0, 'no javascript: link');
    await page.locator('.text a').first().click().catch(() => undefined);
    assert.equal(await page.evaluate('window.__pwned'), undefined, 'no injected script ran');
    assert.equal(await lastPrompt(page).locator('.body').textContent(), prompt, 'the prompt shows as the text typed');
    await page.close();
  });

  it('Stop cancels the generation for everyone in the conversation', async () => {
    const [alice, bob] = [await openJoined('team-2', 'Alice'), await openJoined('team-2', 'Bob')];
    await send(alice, 'slow', 'a long story');
    await alice.waitForFunction("(document.querySelector('.message .text')?.textContent ?? '').length > 20");
    await alice.click('[name=stop]');
    for (const page of [alice, bob]) await page.waitForSelector('.message[data-status=cancelled]', { timeout: 10_000 });
    const text = await replyText(bob);
    assert.ok(text.length > 0 && text.length < expected('a long story', SLOW).length, 'stopped part-way');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a dropped connection shows as such, and the reply resumes without a gap or a repeat', async () => {
    const proxy = new TcpProxy({ host: '127.0.0.1', port: Number(new URL(gateway.url).port) });
    await proxy.listen();
    try {
      const page = await openJoined('team-4', 'Alice', proxy.url);
      await send(page, 'medium', 'keep going through a network drop');
      await page.waitForFunction("(document.querySelector('.message .text')?.textContent ?? '').length > 30");
      assert.ok(proxy.cutAll() > 0, 'the page had connections through the proxy');
      await page.waitForSelector('.notice[data-kind=reconnecting]', { timeout: 5000 });
      await page.waitForSelector('.notice[data-kind=reconnected]', { timeout: 10_000 });
      assert.equal(await page.locator('#connection').getAttribute('data-state'), 'reconnected');
      await page.waitForSelector('.message[data-status=done]', { timeout: 20_000 });
      assert.equal(await lastMessage(page).getAttribute('data-resumed'), 'true', 'the reply is marked as resumed');
      assert.match((await lastMessage(page).locator('.stats').textContent()) ?? '', /resumed after a reconnect$/);
      assert.equal(await replyText(page), expected('keep going through a network drop', MEDIUM));
      await screenshot(page, 'playground-reconnect.png');
      await page.close();
    } finally {
      await proxy.close();
    }
  });

  it('a reload mid-stream resumes: the page shows the prompt and the whole reply once', async () => {
    const page = await openJoined('team-3', 'Alice');
    await send(page, 'long', 'survive a reload');
    await page.waitForFunction("(document.querySelector('.message .text')?.textContent ?? '').length > 10");
    await page.reload();
    // The page re-joins from localStorage; the running generation is replayed from its start, then live.
    await page.waitForSelector('.message[data-status=done]', { timeout: 30_000 });
    assert.equal(await replyText(page), expected('survive a reload', LONG));
    assert.equal(await page.locator('.message').count(), 1, 'one reply, not a duplicate');
    assert.equal(await lastPrompt(page).locator('.body').textContent(), 'survive a reload');
    assert.match((await lastMessage(page).locator('.stats').textContent()) ?? '', /joined mid-stream/);
    await page.close();
  });
});
