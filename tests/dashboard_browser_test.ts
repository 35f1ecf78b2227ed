import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium, type Page } from "playwright-core";
import { closeLive } from "../functions/live.ts";
import { resetGroupCache } from "../shared/drain.ts";
import { createQuoteStore } from "../shared/quote_store.ts";
import { startRedis } from "./_redis_server.ts";
import { createSiteApp, serve, siteConfig, siteDeps } from "./_site.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
const inCi = Deno.env.get("CI") === "true";
const ARTIFACTS = new URL("../test_artifacts/", import.meta.url);

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
    ? "the dashboard fills its ticker, draws the selected symbol's chart and shows alerts in Chromium"
    : `the dashboard browser test is ignored because ${CHROMIUM} is missing (apt-get install chromium)`,
  ignore: !hasChromium && !inCi,
  async fn() {
    const redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "tickstream-browser-" });
    // A low threshold makes the first drained quotes fire price alerts.
    const config = siteConfig(redis.url, dir, { PRICE_ALERT_PERCENT: "0.05" });
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
      await waitUntil(page, `document.querySelectorAll("#queue tbody tr").length === 5`);

      // Emit through the real function: the ticker fills from the live feed.
      await page.click("#emit");
      await waitUntil(page, `document.querySelectorAll("#ticker tbody tr").length === 8`);
      const aapl = '#ticker tr[data-symbol="AAPL"]';
      const firstId = await page.getAttribute(aapl, "data-id");
      assert.ok(firstId);

      // A second batch updates the rows in place and flashes the ones whose price moved.
      await page.click("#emit");
      await waitUntil(
        page,
        `document.querySelector('${aapl}').getAttribute("data-id") !== "${firstId}"`,
      );
      assert.equal(await page.locator("#ticker tbody tr").count(), 8);
      await page.waitForSelector("#ticker tbody tr[data-flash]");

      // More ticks so SMA(20) has enough prices, then drain every group.
      for (let i = 0; i < 3; i++) {
        // The button stays disabled until the emit answered.
        await page.click("#emit");
        await page.waitForSelector("#emit:not([disabled])");
      }
      await page.click("#drain");
      await page.waitForSelector('#dev-tools[data-drained="1"]', { timeout: 20000 });

      // Alerts written by the drain reach the page through the live feed.
      await page.waitForSelector("#alerts li", { timeout: 10000 });
      assert.match(await page.textContent("#alerts li .message") ?? "", /^[A-Z]+ /);

      // Selecting a symbol draws its chart from the quote store and the live feed.
      await page.click('#ticker tr[data-symbol="MSFT"]');
      await page.waitForSelector('#chart[data-symbol="MSFT"]');
      await waitUntil(page, `Number(document.getElementById("chart").dataset.points) >= 25`);
      assert.equal(
        await page.getAttribute('#ticker tr[data-symbol="MSFT"]', "aria-selected"),
        "true",
      );
      assert.ok(await page.locator("#chart canvas").count() >= 1);
      assert.match(await page.textContent("#chart-symbol") ?? "", /MSFT/);
      // Indicators come from the technical-analysis state: SMA(20) exists after 25 ticks.
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
        ["price-alerts", "volume-analysis", "technical-analysis", "market-events", "quote-store"],
      );

      await Deno.mkdir(ARTIFACTS, { recursive: true });
      // Finite animations (the flashes) are fast-forwarded, so the picture is stable.
      await page.screenshot({
        path: new URL("dashboard.png", ARTIFACTS).pathname,
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
        path: new URL("dashboard_phone.png", ARTIFACTS).pathname,
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
