import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { DemoProvider } from '@tokenwire/providers';
import { launchChromium } from '../support/browser';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';

const DEMO = { tokenDelayMs: 30, tokens: 40 };
const SLOW = { tokenDelayMs: 60, tokens: 300 };
const expected = (prompt: string) => new DemoProvider(DEMO).replyTokens([{ role: 'user', content: prompt }]).join('');

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
        { name: 'slow', provider: 'demo', options: SLOW },
      ],
    });
    key = await createKey(gateway.url, 'playground-tenant');
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gateway?.close();
  });

  async function openJoined(conversation: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(gateway.url);
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

  it('two pages in one conversation both show the full reply as it streams', async () => {
    const [alice, bob] = [await openJoined('team-1'), await openJoined('team-1')];
    await send(alice, 'demo', 'hello team');
    for (const page of [alice, bob]) {
      await page.waitForSelector('.message[data-status=done]', { timeout: 15_000 });
      assert.equal(await lastMessage(page).locator('.text').textContent(), expected('hello team'));
    }
    // PLAYGROUND_SCREENSHOT=docs/playground.png refreshes the README's picture.
    const screenshot = process.env.PLAYGROUND_SCREENSHOT;
    if (screenshot) {
      mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
      await alice.screenshot({ path: screenshot, fullPage: true });
    }
    await Promise.all([alice.close(), bob.close()]);
  });

  it('Stop cancels the generation for everyone in the conversation', async () => {
    const [alice, bob] = [await openJoined('team-2'), await openJoined('team-2')];
    await send(alice, 'slow', 'a long story');
    await alice.waitForFunction("(document.querySelector('.message .text')?.textContent ?? '').length > 20");
    await alice.click('[name=stop]');
    for (const page of [alice, bob]) await page.waitForSelector('.message[data-status=cancelled]', { timeout: 10_000 });
    const text = (await lastMessage(bob).locator('.text').textContent()) ?? '';
    assert.ok(text.length > 0 && text.length < new DemoProvider(SLOW).replyTokens([{ role: 'user', content: 'a long story' }]).join('').length, 'stopped part-way');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a reload mid-stream resumes: the page shows the whole reply', async () => {
    const page = await openJoined('team-3');
    await send(page, 'demo', 'survive a reload');
    await page.waitForFunction("(document.querySelector('.message .text')?.textContent ?? '').length > 10");
    await page.reload();
    // The page re-joins from localStorage; the running generation is replayed from its start, then live.
    await page.waitForSelector('.message[data-status=done]', { timeout: 15_000 });
    assert.equal(await lastMessage(page).locator('.text').textContent(), expected('survive a reload'));
    assert.equal(await page.locator('.message').count(), 1, 'one reply, not a duplicate');
    await page.close();
  });
});
