import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium, type Page } from "playwright-core";
import { closeLive } from "../functions/live.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { startRedis } from "./_redis_server.ts";
import { createSiteApp, serve, siteConfig, siteDeps } from "./_site.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
const inCi = Deno.env.get("CI") === "true";
/**
 * Where the screenshots go: a temporary directory, removed afterwards, unless
 * DASHBOARD_SCREENSHOT_DIR names one to keep them in (docs/ refreshes the
 * README's picture, see docs/operations.md).
 */
const KEEP_SCREENSHOTS = Deno.env.get("DASHBOARD_SCREENSHOT_DIR");

/**
 * Polls a page expression from the test side until it is truthy.
 * page.waitForFunction would evaluate it with eval inside the page, which
 * the dashboard's Content-Security-Policy forbids, as it should.
 */
async function waitUntil(page: Page, expression: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for: ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test({
  // In CI the test always runs, so a missing browser fails it instead of hiding.
  name: hasChromium || inCi
    ? "the dashboard shows ticker and session volume, a time chart without walls and with alerts marked, in Chromium"
    : `the dashboard browser test is ignored because ${CHROMIUM} is missing (apt-get install chromium)`,
  ignore: !hasChromium && !inCi,
  async fn() {
    const redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "tickstream-browser-" });
    const shots = KEEP_SCREENSHOTS ?? dir;
    // Default alert settings: what a fresh deno task dev shows.
    const config = siteConfig(redis.url, dir);
    const store = createQuoteStore(config);
    resetGroupCache();
    const server = serve(
      createSiteApp(siteDeps(config, { redis: redis.client(), quoteStore: store })),
    );
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    // Two minutes of market before the page opens, as if the paced cron had run:
    // one tick per second per symbol, ending now.
    const warmup = await fetch(`${server.url}/emit-quotes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ticks: 120 }),
    });
    assert.equal(warmup.status, 200, await warmup.text());
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const foreign: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console error: ${message.text()}`);
      });
      page.on("request", (request) => {
        const url = request.url();
        if (!url.startsWith(server.url) && !url.startsWith("data:")) foreign.push(url);
      });

      await page.goto(`${server.url}/`);
      await page.waitForSelector("#dev-tools:not([hidden])");
      await page.waitForSelector('#status[data-state="live"]');
      // Page-side checks are strings: this file is type-checked without the DOM library.
      await waitUntil(
        page,
        `document.querySelectorAll("#queue tbody tr").length === ${GROUP_NAMES.length}`,
      );
      // The ticker starts from the latest quotes, with session volume bars.
      await waitUntil(page, `document.querySelectorAll("#ticker tbody tr").length === 8`);
      const sessions = await page.evaluate(
        `[...document.querySelectorAll("#ticker tbody tr")].map((r) => ({
          text: r.querySelector("td.session .value").textContent,
          volume: Number(r.dataset.sessionVolume),
          width: r.querySelector("td.session .bar").style.width,
        }))`,
      ) as { text: string; volume: number; width: string }[];
      const largest = Math.max(...sessions.map((s) => s.volume));
      for (const session of sessions) {
        assert.match(session.text, /^\d{1,3}(,\d{3})*$/);
        assert.equal(Number(session.text.replaceAll(",", "")), session.volume);
        assert.equal(session.width, `${Math.round((session.volume / largest) * 100)}%`);
      }
      const aapl = '#ticker tr[data-symbol="AAPL"]';
      const firstId = await page.getAttribute(aapl, "data-id");
      assert.ok(firstId);

      // Emit through the real function: the rows update in place from the live
      // feed and flash where the price moved.
      await page.click("#emit");
      await waitUntil(
        page,
        `document.querySelector('${aapl}').getAttribute("data-id") !== "${firstId}"`,
      );
      assert.equal(await page.locator("#ticker tbody tr").count(), 8);
      await page.waitForSelector("#ticker tbody tr[data-flash]");

      // Bursts: every emit asks for 5 ticks within the second or so since the last.
      for (let i = 0; i < 3; i++) {
        await page.waitForSelector("#emit:not([disabled])");
        await page.click("#emit");
      }
      await page.waitForSelector("#emit:not([disabled])");
      // And one burst of 20 ticks that surely asks for more than the seconds since the last.
      const burst = await fetch(`${server.url}/emit-quotes`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ticks: 20 }),
      });
      assert.equal(burst.status, 200, await burst.text());
      await page.click("#drain");
      await page.waitForSelector('#dev-tools[data-drained="1"]', { timeout: 20000 });

      // Alerts written by the drain reach the page through the live feed,
      // stamped with the quote's market time.
      await page.waitForSelector("#alerts li", { timeout: 10000 });
      assert.match(await page.textContent("#alerts li .message") ?? "", /^[A-Z]+ /);
      assert.match(await page.textContent("#alerts li time") ?? "", /^\d\d:\d\d:\d\d$/);

      // Selecting a symbol draws its chart from the quote store and the live feed:
      // one point per second of market time, so the bursts make no walls.
      await page.click('#ticker tr[data-symbol="MSFT"]');
      await page.waitForSelector('#chart[data-symbol="MSFT"]');
      await waitUntil(page, `Number(document.getElementById("chart").dataset.ticks) >= 160`);
      const chart = await page.evaluate(
        `({ ...document.getElementById("chart").dataset })`,
      ) as Record<string, string>;
      const ticks = Number(chart.ticks);
      const points = Number(chart.points);
      assert.ok(points >= 120 && points < ticks, `${points} points for ${ticks} ticks`);
      // The x axis reads as market time.
      const labels = chart.xLabels.split(" ");
      assert.ok(labels.length >= 2, chart.xLabels);
      for (const label of labels) assert.match(label, /^\d\d:\d\d:\d\d$/);
      // The symbol's alerts are marked on the price line (at least its session_open).
      await waitUntil(page, `Number(document.getElementById("chart").dataset.alerts) >= 1`);
      assert.equal(
        await page.getAttribute('#ticker tr[data-symbol="MSFT"]', "aria-selected"),
        "true",
      );
      assert.ok(await page.locator("#chart canvas").count() >= 1);
      assert.match(await page.textContent("#chart-symbol") ?? "", /MSFT/);
      // Indicators come from the technical-analysis state: SMA(20) exists after 160 ticks.
      await waitUntil(
        page,
        `[...document.querySelectorAll("#indicators div")].some((d) =>
        d.querySelector("dt").textContent === "sma20" && d.querySelector("dd").textContent !== "–")`,
      );

      // Queue health shows every group caught up after the drain.
      await waitUntil(
        page,
        `[...document.querySelectorAll("#queue tbody tr")].every((row) =>
        row.children[1].textContent === "0")`,
      );
      assert.deepEqual(
        await page.evaluate(
          `[...document.querySelectorAll("#queue tbody tr")].map((r) => r.dataset.group)`,
        ),
        [...GROUP_NAMES],
      );

      // Finite animations (the flashes) are fast-forwarded, so the picture is stable.
      await page.screenshot({
        path: `${shots}/dashboard.png`,
        fullPage: true,
        animations: "disabled",
      });

      // Phone-sized screen: one column, nothing wider than the viewport.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(
        `document.documentElement.scrollWidth - window.innerWidth`,
      ) as number;
      assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone screen`);
      await page.screenshot({
        path: `${shots}/dashboard_phone.png`,
        fullPage: true,
        animations: "disabled",
      });

      assert.deepEqual(foreign, [], "the page must load nothing from other hosts");
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await closeLive();
      await server.close();
      await store.close();
      await redis.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
