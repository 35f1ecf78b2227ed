/// <reference lib="dom" />
/**
 * The dashboard's browser code: a live ticker, a price chart with SMA(20)
 * for the selected symbol, the alerts feed and a queue-health panel, fed by
 * the public API and the `/live` Server-Sent Events feed. Bundled with uPlot
 * into static/dashboard.js and static/dashboard.css by `deno task bundle`,
 * so the page loads nothing from the internet.
 *
 * @module
 */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./dashboard.css";

interface QuoteJson {
  id: string;
  symbol: string;
  price: number;
  change: number | null;
  change_percent: number | null;
  volume: number;
  timestamp: number;
  datetime: string;
}

interface StoredQuote {
  id: string;
  symbol: string;
  price: number;
  timestamp: number;
}

interface AlertJson {
  id: string;
  type: string;
  symbol: string;
  message: string;
  value: number | null;
  datetime: string;
}

interface QueueGroup {
  name: string;
  lag: number | null;
  pending: number;
  deadLetters: number;
  consumers: number;
}

interface Indicators {
  sma5: number | null;
  sma20: number | null;
  ema12: number | null;
  ema26: number | null;
  macd: number | null;
  rsi14: number | null;
}

interface Point {
  id: string;
  t: number;
  price: number;
}

interface TickerRow {
  row: HTMLTableRowElement;
  price: HTMLTableCellElement;
  change: HTMLTableCellElement;
  volume: HTMLTableCellElement;
  time: HTMLTableCellElement;
  quote: QuoteJson;
}

const QUEUE_REFRESH_MS = 3000;
const MAX_POINTS = 1000;
const MAX_LIVE_POINTS = 500;
const MAX_ALERTS = 60;
const SMA_PERIOD = 20;
const EMIT_TICKS = 5;
const DRAIN_BUDGET_MS = 2000;

const tickerRows = new Map<string, TickerRow>();
const livePoints = new Map<string, Point[]>();
const alertIds = new Set<string>();
let selected: string | null = null;
let chartPoints: Point[] = [];
let plot: uPlot | null = null;
let chartFrame = 0;
let lastEventId = "";

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`Missing element #${id}`);
  return element as T;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = "",
  text = "",
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (className !== "") element.className = className;
  if (text !== "") element.textContent = text;
  return element;
}

/** Orders stream ids numerically ("ms-seq"). */
function compareIds(a: string, b: string): number {
  const [am, as = 0] = a.split("-").map(Number);
  const [bm, bs = 0] = b.split("-").map(Number);
  return am - bm || as - bs;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return await response.json() as T;
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(String(data.error ?? response.status));
  return data;
}

function formatPrice(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : value.toFixed(2);
}

function formatPercent(value: number | null): string {
  if (value === null) return "–";
  return `${value > 0 ? "+" : ""}${value.toFixed(2)}%`;
}

function formatTime(datetime: string): string {
  const date = new Date(datetime);
  return Number.isNaN(date.getTime()) ? datetime : date.toLocaleTimeString("en-GB");
}

function setStatus(state: "connecting" | "live" | "reconnecting"): void {
  const status = byId("status");
  status.dataset.state = state;
  status.textContent = state;
}

// ---- Ticker ----

function tickerRow(quote: QuoteJson): TickerRow {
  const existing = tickerRows.get(quote.symbol);
  if (existing !== undefined) return existing;
  const row = el("tr");
  row.dataset.symbol = quote.symbol;
  row.tabIndex = 0;
  row.setAttribute("aria-selected", "false");
  const entry: TickerRow = {
    row,
    price: el("td", "num price"),
    change: el("td", "num change"),
    volume: el("td", "num volume"),
    time: el("td", "num time hide-narrow"),
    quote,
  };
  row.append(el("td", "symbol", quote.symbol), entry.price, entry.change, entry.volume, entry.time);
  row.addEventListener("click", () => selectSymbol(quote.symbol));
  // Drop the class once the flash is over, so the row repaints plainly.
  row.addEventListener("animationend", () => row.classList.remove("flash-up", "flash-down"));
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") selectSymbol(quote.symbol);
  });
  // Keep the table sorted by symbol.
  const body = byId<HTMLTableElement>("ticker").tBodies[0];
  const after = [...tickerRows.keys()].sort().find((s) => s > quote.symbol);
  body.insertBefore(row, after === undefined ? null : tickerRows.get(after)!.row);
  tickerRows.set(quote.symbol, entry);
  byId("ticker-empty").hidden = true;
  return entry;
}

function showQuote(quote: QuoteJson): void {
  const isNew = !tickerRows.has(quote.symbol);
  const entry = tickerRow(quote);
  if (!isNew && compareIds(quote.id, entry.quote.id) < 0) return;
  const previous = isNew ? null : entry.quote.price;
  entry.quote = quote;
  entry.row.dataset.id = quote.id;
  entry.price.textContent = formatPrice(quote.price);
  entry.change.textContent = formatPercent(quote.change_percent);
  entry.change.className = `num change ${
    (quote.change_percent ?? 0) > 0 ? "up" : (quote.change_percent ?? 0) < 0 ? "down" : ""
  }`;
  entry.volume.textContent = Math.round(quote.volume).toLocaleString("en-US");
  entry.time.textContent = formatTime(quote.datetime);
  if (previous !== null && previous !== quote.price) {
    const row = entry.row;
    row.classList.remove("flash-up", "flash-down");
    // Reading layout restarts the animation when the class comes back.
    void row.offsetWidth;
    const direction = quote.price > previous ? "up" : "down";
    row.classList.add(`flash-${direction}`);
    row.dataset.flash = direction;
  }
  markRowCount();
}

function markRowCount(): void {
  byId("ticker").dataset.rows = String(tickerRows.size);
}

// ---- Chart ----

function rememberLive(quote: QuoteJson): void {
  let points = livePoints.get(quote.symbol);
  if (points === undefined) {
    points = [];
    livePoints.set(quote.symbol, points);
  }
  points.push({ id: quote.id, t: quote.timestamp, price: quote.price });
  if (points.length > MAX_LIVE_POINTS) points.splice(0, points.length - MAX_LIVE_POINTS);
}

function smaSeries(prices: number[], period: number): (number | null)[] {
  const out: (number | null)[] = [];
  let sum = 0;
  for (let i = 0; i < prices.length; i++) {
    sum += prices[i];
    if (i >= period) sum -= prices[i - period];
    out.push(i >= period - 1 ? sum / period : null);
  }
  return out;
}

function ensurePlot(): uPlot {
  if (plot !== null) return plot;
  const container = byId("chart");
  const axis = {
    stroke: "#8b949e",
    grid: { stroke: "#30363d", width: 1 },
    ticks: { stroke: "#30363d", width: 1 },
  };
  plot = new uPlot(
    {
      width: Math.max(200, container.clientWidth),
      height: container.clientWidth < 500 ? 220 : 280,
      scales: { x: { time: true } },
      series: [
        {},
        {
          label: "Price",
          stroke: "#58a6ff",
          width: 2,
          value: (_u: uPlot, v: number | null) => formatPrice(v),
        },
        {
          label: `SMA(${SMA_PERIOD})`,
          stroke: "#f0b429",
          width: 1.5,
          dash: [6, 4],
          value: (_u: uPlot, v: number | null) => formatPrice(v),
        },
      ],
      axes: [axis, { ...axis, size: 64 }],
      legend: { live: true },
    },
    [[], [], []],
    container,
  );
  new ResizeObserver(() => {
    plot?.setSize({
      width: Math.max(200, container.clientWidth),
      height: container.clientWidth < 500 ? 220 : 280,
    });
  }).observe(container);
  return plot;
}

function drawChart(): void {
  chartFrame = 0;
  const chart = ensurePlot();
  const prices = chartPoints.map((p) => p.price);
  chart.setData([chartPoints.map((p) => p.t), prices, smaSeries(prices, SMA_PERIOD)]);
  byId("chart").dataset.points = String(chartPoints.length);
}

function scheduleChart(): void {
  if (chartFrame === 0) chartFrame = requestAnimationFrame(drawChart);
}

function mergePoints(...lists: Point[][]): Point[] {
  const byKey = new Map<string, Point>();
  for (const list of lists) for (const p of list) byKey.set(p.id, p);
  const merged = [...byKey.values()].sort((a, b) => compareIds(a.id, b.id));
  return merged.slice(-MAX_POINTS);
}

function renderIndicators(indicators: Indicators | null): void {
  const list = byId("indicators");
  list.replaceChildren();
  const names: (keyof Indicators)[] = ["sma5", "sma20", "ema12", "ema26", "macd", "rsi14"];
  for (const name of names) {
    const item = el("div");
    const value = indicators?.[name] ?? null;
    item.append(el("dt", "", name), el("dd", "", value === null ? "–" : value.toFixed(2)));
    list.append(item);
  }
}

async function refreshIndicators(symbol: string): Promise<void> {
  try {
    const detail = await getJson<{ indicators: Indicators }>(
      `/api/stocks/${encodeURIComponent(symbol)}`,
    );
    if (selected === symbol) renderIndicators(detail.indicators);
  } catch {
    if (selected === symbol) renderIndicators(null);
  }
}

async function loadHistory(symbol: string): Promise<void> {
  let stored: StoredQuote[] = [];
  try {
    stored = await getJson<StoredQuote[]>(
      `/api/stocks/${encodeURIComponent(symbol)}/history?limit=${MAX_POINTS}`,
    );
  } catch {
    // The store may be empty until the quote-store group drains; live points still show.
  }
  if (selected !== symbol) return;
  const history = stored.map((q) => ({ id: q.id, t: q.timestamp, price: q.price }));
  chartPoints = mergePoints(history, chartPoints, livePoints.get(symbol) ?? []);
  scheduleChart();
}

function selectSymbol(symbol: string): void {
  if (selected !== symbol) {
    selected = symbol;
    chartPoints = [...(livePoints.get(symbol) ?? [])];
    for (const [s, entry] of tickerRows) {
      entry.row.setAttribute("aria-selected", String(s === symbol));
    }
    byId("chart-symbol").textContent = symbol;
    byId("chart").dataset.symbol = symbol;
    history.replaceState(null, "", `#${symbol}`);
    scheduleChart();
  }
  loadHistory(symbol);
  refreshIndicators(symbol);
}

// ---- Alerts ----

function showAlert(alert: AlertJson, fresh: boolean): void {
  if (alertIds.has(alert.id)) return;
  alertIds.add(alert.id);
  const item = el("li", fresh ? "new" : "");
  item.dataset.id = alert.id;
  const time = el("time", "", formatTime(alert.datetime));
  time.dateTime = alert.datetime;
  item.append(
    time,
    el("span", "type", alert.type.replaceAll("_", " ")),
    el("strong", "", alert.symbol),
    el("span", "message", alert.message),
  );
  const list = byId("alerts");
  // Newest first: insert before the first older one.
  const older = [...list.children].find((li) =>
    compareIds((li as HTMLElement).dataset.id ?? "0", alert.id) < 0
  );
  list.insertBefore(item, older ?? null);
  while (list.children.length > MAX_ALERTS) {
    const last = list.lastElementChild as HTMLElement;
    alertIds.delete(last.dataset.id ?? "");
    last.remove();
  }
  byId("alerts-empty").hidden = true;
}

// ---- Queue health ----

function cell(text: string, className = "num"): HTMLTableCellElement {
  return el("td", className, text);
}

async function refreshQueue(): Promise<QueueGroup[]> {
  const { groups } = await getJson<{ groups: QueueGroup[] }>("/api/queue");
  const body = byId<HTMLTableElement>("queue").tBodies[0];
  body.replaceChildren(...groups.map((g) => {
    const row = el("tr");
    row.dataset.group = g.name;
    row.append(
      cell(g.name, ""),
      cell(g.lag === null ? "–" : String(g.lag)),
      cell(String(g.pending)),
      cell(String(g.deadLetters), g.deadLetters > 0 ? "num dead" : "num"),
      cell(String(g.consumers)),
    );
    return row;
  }));
  return groups;
}

function refreshLoop(): void {
  refreshQueue().catch(() => {});
  if (selected !== null) refreshIndicators(selected);
  setTimeout(refreshLoop, QUEUE_REFRESH_MS);
}

// ---- Live feed ----

function onQuote(quote: QuoteJson): void {
  rememberLive(quote);
  showQuote(quote);
  if (selected === null) selectSymbol(quote.symbol);
  else if (quote.symbol === selected) {
    const last = chartPoints[chartPoints.length - 1];
    if (last === undefined || compareIds(quote.id, last.id) > 0) {
      chartPoints.push({ id: quote.id, t: quote.timestamp, price: quote.price });
      if (chartPoints.length > MAX_POINTS) chartPoints.shift();
      scheduleChart();
    }
  }
}

function connect(): void {
  const url = lastEventId === "" ? "/live" : `/live?since=${encodeURIComponent(lastEventId)}`;
  const source = new EventSource(url);
  let quiet: ReturnType<typeof setTimeout> | undefined;
  source.addEventListener("open", () => {
    clearTimeout(quiet);
    setStatus("live");
  });
  source.addEventListener("quote", (event) => {
    const message = event as MessageEvent<string>;
    lastEventId = message.lastEventId;
    onQuote(JSON.parse(message.data));
  });
  source.addEventListener("alert", (event) => {
    const message = event as MessageEvent<string>;
    lastEventId = message.lastEventId;
    showAlert(JSON.parse(message.data), true);
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (e.g. 503 past LIVE_MAX_CLIENTS): EventSource gives up, so retry by hand.
      setStatus("reconnecting");
      setTimeout(connect, 3000);
      return;
    }
    // The server ends each connection after LIVE_MAX_MS and EventSource
    // reconnects at once; only a reconnect that takes a while is news.
    clearTimeout(quiet);
    quiet = setTimeout(() => setStatus("reconnecting"), 1500);
  });
}

// ---- Development buttons ----

function setupDevTools(): void {
  const dev = document.querySelector('meta[name="tickstream-dev"]')?.getAttribute("content");
  if (dev !== "true") return;
  const tools = byId("dev-tools");
  tools.hidden = false;
  const result = byId("dev-result");
  const emit = byId<HTMLButtonElement>("emit");
  const drain = byId<HTMLButtonElement>("drain");
  emit.addEventListener("click", async () => {
    emit.disabled = true;
    try {
      const response = await postJson("/emit-quotes", { ticks: EMIT_TICKS });
      result.textContent = `Emitted ${response.emitted} quotes`;
    } catch (error) {
      result.textContent = `Emit failed: ${(error as Error).message}`;
    } finally {
      emit.disabled = false;
    }
  });
  drain.addEventListener("click", async () => {
    drain.disabled = true;
    try {
      const groups = await refreshQueue();
      const results = await Promise.all(
        groups.map((g) =>
          postJson(`/drain/${encodeURIComponent(g.name)}`, { budgetMs: DRAIN_BUDGET_MS })
        ),
      );
      const acked = results.reduce((sum, r) => sum + Number(r.acked ?? 0), 0);
      result.textContent = `Drained ${groups.length} groups: ${acked} entries acked`;
      tools.dataset.drained = String(Number(tools.dataset.drained ?? 0) + 1);
      await refreshQueue();
      if (selected !== null) selectSymbol(selected);
    } catch (error) {
      result.textContent = `Drain failed: ${(error as Error).message}`;
    } finally {
      drain.disabled = false;
    }
  });
}

// ---- Start ----

async function start(): Promise<void> {
  setupDevTools();
  renderIndicators(null);
  connect();
  refreshLoop();
  const [quotes, alerts] = await Promise.all([
    getJson<QuoteJson[]>("/api/stocks").catch(() => []),
    getJson<AlertJson[]>("/api/alerts?limit=30").catch(() => []),
  ]);
  for (const quote of quotes) showQuote(quote);
  for (const alert of alerts) showAlert(alert, false);
  const wanted = decodeURIComponent(location.hash.slice(1));
  const first = tickerRows.has(wanted) ? wanted : [...tickerRows.keys()].sort()[0];
  if (selected === null && first !== undefined) selectSymbol(first);
}

start();
