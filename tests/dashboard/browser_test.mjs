// The browser half of dashboard_browser_test (started by dashboard_browser_test.cpp, which
// starts the stack and submits the batch). Drives Debian's Chromium with playwright-core from
// tools/node_modules. Environment:
//   DASHBOARD_URL       token-mode dashboard (in the test process)
//   OPEN_DASHBOARD_URL  the scheduler binary's own dashboard (open mode: loopback, read-only)
//   TOKEN, BATCH_ID, FAILED_JOB, OUT_DIR, CHROMIUM, TOOLS_DIR (default: the working directory)
// Exits non-zero with a message on the first expectation that does not hold.
import { createRequire } from 'node:module';
import path from 'node:path';

const env = process.env;
const require = createRequire(path.join(env.TOOLS_DIR || process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`);
const shot = async (page, name) => {
  await page.screenshot({ path: path.join(env.OUT_DIR, name), fullPage: true });
  log(`screenshot ${name}`);
};
function expect(ok, message) {
  if (!ok) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // As root in a container Chromium's sandbox cannot start; the pages are our own.
  args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const consoleErrors = [];
  // An HTTP error the page handles (the 403 of a tenant on the accounts page) is not a fault.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // Sign in once: the token goes into an HttpOnly cookie the script cannot read.
  await page.goto(env.DASHBOARD_URL);
  await page.fill('#token', env.TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-model]');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'reelq_token');
  expect(session && session.httpOnly && session.sameSite === 'Strict', `session cookie: ${JSON.stringify(session)}`);
  expect(await page.evaluate(() => document.cookie.includes('reelq_token')) === false, 'token visible to scripts');
  log('signed in; overview shows models');

  // Batches: the batch's bar reaches 100 %.
  await page.goto(`${env.DASHBOARD_URL}/#/batches`);
  const percent = `[data-batch-id="${env.BATCH_ID}"] [data-testid=batch-percent]`;
  await page.waitForSelector(percent);
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.percent === '100', percent, { timeout: 30000 });
  log('batch bar at 100 %');
  await shot(page, 'batches.png');

  await page.goto(`${env.DASHBOARD_URL}/#/overview`);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-model]')].some((r) => r.textContent.includes('p95')));
  await shot(page, 'overview.png');

  // The batch page; then a succeeded job and its clip.
  await page.goto(`${env.DASHBOARD_URL}/#/batch/${encodeURIComponent(env.BATCH_ID)}`);
  await page.waitForSelector('tr[data-state=SUCCEEDED] a');
  await shot(page, 'batch.png');
  const failedRows = await page.$$('tr[data-state=FAILED]');
  expect(failedRows.length === 1, `expected one FAILED row, saw ${failedRows.length}`);
  await page.click('tr[data-state=SUCCEEDED] a');
  await page.waitForSelector('video#clip');
  const upstream = await page.textContent('[data-testid=upstream-id]');
  expect(upstream && upstream !== '—', 'no upstream id on the job page');
  await page.evaluate(() => document.querySelector('video#clip').play());
  await page.waitForFunction(() => {
    const v = document.querySelector('video#clip');
    return v && v.readyState >= 2 && v.currentTime > 0.4;
  }, null, { timeout: 20000 });
  const t1 = await page.evaluate(() => document.querySelector('video#clip').currentTime);
  await page.waitForTimeout(600);
  const t2 = await page.evaluate(() => document.querySelector('video#clip').currentTime);
  expect(t2 > t1, `currentTime did not advance (${t1} -> ${t2})`);
  // Seeking needs the Range proxy: jump near the end and play on from there.
  await page.evaluate(() => { const v = document.querySelector('video#clip'); v.currentTime = Math.max(0, v.duration - 1.5); });
  await page.waitForFunction(() => {
    const v = document.querySelector('video#clip');
    return !v.seeking && v.readyState >= 2 && v.currentTime >= v.duration - 1.6;
  }, null, { timeout: 10000 });
  const state = await page.evaluate(() => {
    const v = document.querySelector('video#clip');
    return { readyState: v.readyState, currentTime: v.currentTime, duration: v.duration, src: v.currentSrc };
  });
  log(`clip plays and seeks: ${JSON.stringify(state)} (time advanced ${t1.toFixed(2)} -> ${t2.toFixed(2)} s)`);
  await page.evaluate(() => document.querySelector('video#clip').pause());
  await shot(page, 'job.png');

  // The failed job: its error, then Retry, and it runs again.
  await page.goto(`${env.DASHBOARD_URL}/#/job/${encodeURIComponent(env.FAILED_JOB)}`);
  await page.waitForSelector('.error-box');
  expect((await page.textContent('[data-testid=job-state]')).startsWith('FAILED'), 'the flaky job is not FAILED');
  const errorText = await page.textContent('.error-box');
  log(`failed job shows: ${errorText.replace(/\s+/g, ' ').trim()}`);
  await shot(page, 'job-failed.png');
  await page.click('[data-testid=retry]');
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid=job-state]')?.textContent || '';
    return s.startsWith('SUCCEEDED');
  }, null, { timeout: 30000 });
  const timeline = await page.textContent('.timeline');
  expect(timeline.includes('retried by request'), 'the timeline does not show the retry');
  await page.waitForSelector('video#clip');
  log('Retry pressed: the job ran again and SUCCEEDED');
  await shot(page, 'job-retried.png');

  await page.goto(`${env.DASHBOARD_URL}/#/tenants`);
  await page.waitForSelector('.page-head');
  await shot(page, 'tenants.png');
  // Accounts are for admins: a tenant token is told so.
  await page.goto(`${env.DASHBOARD_URL}/#/accounts`);
  await page.waitForSelector('.notice.error');

  // A phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await phone.addCookies([{ ...session }]);
  const mobile = await phone.newPage();
  await mobile.goto(`${env.DASHBOARD_URL}/#/overview`);
  await mobile.waitForSelector('[data-model]');
  const overflow = await mobile.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `the phone layout scrolls sideways by ${overflow}px`);
  await shot(mobile, 'overview-phone.png');
  await mobile.goto(`${env.DASHBOARD_URL}/#/job/${encodeURIComponent(env.FAILED_JOB)}`);
  await mobile.waitForSelector('video#clip');
  await shot(mobile, 'job-phone.png');
  await phone.close();

  // The scheduler binary's own dashboard: no tokens, so read-only, and every page is open.
  const open = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  const openPage = await open.newPage();
  await openPage.goto(`${env.OPEN_DASHBOARD_URL}/#/overview`);
  await openPage.waitForSelector('[data-model]');
  await shot(openPage, 'open-overview.png');
  await openPage.goto(`${env.OPEN_DASHBOARD_URL}/#/accounts`);
  await openPage.waitForSelector('[data-account]');
  // kling-b learned a lower concurrency (the test wrote it): shown against its configured 64.
  const learnedConc = await openPage.textContent('[data-account="kling-b"] [data-learned-conc]');
  expect(/^learned (8|9|10) of 64$/.test(learnedConc), `kling-b's learned concurrency reads "${learnedConc}"`);
  expect(await openPage.$('[data-account="kling-a"] [data-learned-conc]') === null,
    'kling-a shows a learned concurrency it never had');
  await shot(openPage, 'accounts.png');
  await openPage.goto(`${env.OPEN_DASHBOARD_URL}/#/job/${encodeURIComponent(env.FAILED_JOB)}`);
  await openPage.waitForSelector('[data-testid=retry]');
  expect(await openPage.isDisabled('[data-testid=retry]'), 'Retry is enabled in read-only mode');
  await open.close();

  expect(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  log('all browser checks passed');
} finally {
  await browser.close();
}
