/**
 * The machine's Chromium for page tests, and a tab that records what a
 * hostile page could do: dialogs opened (script ran) and CSP refusals.
 */
import { type Browser, type Page, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A new tab, with the dialogs it opened and the CSP refusals it logged. */
export async function watchedTab(browser: Browser): Promise<{ tab: Page; dialogs: string[]; refused: string[] }> {
  const tab = await browser.newPage();
  const refused: string[] = [];
  const dialogs: string[] = [];
  tab.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text()); });
  tab.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  return { tab, dialogs, refused };
}
