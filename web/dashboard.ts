/// <reference lib="dom" />
/**
 * The dashboard's browser code: a live ticker with session volume bars, a
 * price chart of the selected symbol over market time (one point per second,
 * so a burst of ticks draws no wall) with SMA(20), volume bars and its
 * alerts marked, the alerts feed and a queue-health panel, fed by the public
 * API and the `/live` Server-Sent Events feed. Bundled with uPlot into
 * static/dashboard.js and static/dashboard.css by `deno task bundle`, so the
 * page loads nothing from the internet.
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
  session_volume: number | null;
  timestamp: number;
  datetime: string;
}

interface StoredQuote {
  id: string;
  symbol: string;
  price: number;
  volume: number;
  timestamp: number;
  datetime: string;
}

interface AlertJson {
  id: string;
  type: string;
  symbol: string;
  message: string;
  value: number | null;
  datetime: string;
  quote_timestamp: number | null;
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

/** One quote of the chart: its entry id, market time in seconds, price and volume. */
interface Point {
  id: string;
  t: number;
  price: number;
  volume: number;
}

/** The quotes of one second of market time, drawn as one point. */
interface Bucket {
  /** The second, in Unix seconds. */
  t: number;
  /** Last price in the second. */
  price: number;
  /** Volume traded in the second. */
  volume: number;
}

interface TickerRow {
  row: HTMLTableRowElement;
  price: HTMLTableCellElement;
  change: HTMLTableCellElement;
  volume: HTMLTableCellElement;
  session: HTMLTableCellElement;
  sessionBar: HTMLSpanElement;
  sessionValue: HTMLSpanElement;
  time: HTMLTableCellElement;
  quote: QuoteJson;
}

const QUEUE_REFRESH_MS = 3000;
const MAX_POINTS = 1000;
const MAX_LIVE_POINTS = 500;
const MAX_ALERTS = 60;
const MAX_MARKS = 200;
const SMA_PERIOD = 20;
const EMIT_TICKS = 5;
const DRAIN_BUDGET_MS = 2000;

const tickerRows = new Map<string, TickerRow>();
const livePoints = new Map<string, Point[]>();
const alertIds = new Set<string>();
/** Market second of every alert known per symbol, by alert id, for the chart's marks. */
const alertMarks = new Map<string, Map<string, number>>();
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

/** Unix seconds as HH:MM:SS in the browser's time zone. */
function formatClock(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString("en-GB", { hour12: false });
}

function formatCount(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : Math.round(value).toLocaleString("en-US");
}

/** Market time of a quote in seconds, with the milliseconds its datetime carries. */
function marketSeconds(quote: { timestamp: number; datetime: string }): number {
  const ms = Date.parse(quote.datetime);
  return Number.isNaN(ms) ? quote.timestamp : ms / 1000;
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
    volume: el("td", "num volume hide-narrow"),
    session: el("td", "num session"),
    sessionBar: el("span", "bar"),
    sessionValue: el("span", "value"),
    time: el("td", "num time hide-narrow"),
    quote,
  };
  entry.session.append(entry.sessionBar, entry.sessionValue);
  row.append(
    el("td", "symbol", quote.symbol),
    entry.price,
    entry.change,
    entry.volume,
    entry.session,
    entry.time,
  );
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
  entry.volume.textContent = formatCount(quote.volume);
  entry.sessionValue.textContent = formatCount(quote.session_volume);
  entry.row.dataset.sessionVolume = String(quote.session_volume ?? "");
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
  // Session volume bars: each symbol's share of the largest session volume.
  const volumes = [...tickerRows.values()].map((r) => r.quote.session_volume ?? 0);
  const largest = Math.max(1, ...volumes);
  for (const entry of tickerRows.values()) {
    const share = (entry.quote.session_volume ?? 0) / largest;
    entry.sessionBar.style.width = `${Math.round(share * 100)}%`;
  }
}

// ---- Chart ----

function pointOf(quote: QuoteJson | StoredQuote): Point {
  return { id: quote.id, t: marketSeconds(quote), price: quote.price, volume: quote.volume };
}

function rememberLive(quote: QuoteJson): void {
  let points = livePoints.get(quote.symbol);
  if (points === undefined) {
    points = [];
    livePoints.set(quote.symbol, points);
  }
  points.push(pointOf(quote));
  if (points.length > MAX_LIVE_POINTS) points.splice(0, points.length - MAX_LIVE_POINTS);
}

/**
 * One bucket per second of market time: the last price and the summed
 * volume. A burst puts many ticks into few seconds; drawn tick by tick they
 * would stand on one x position as a wall.
 */
function bucketsOf(points: Point[]): Bucket[] {
  const out: Bucket[] = [];
  for (const p of points) {
    const t = Math.floor(p.t);
    const last = out[out.length - 1];
    if (last !== undefined && last.t === t) {
      last.price = p.price;
      last.volume += p.volume;
    } else if (last === undefined || t > last.t) {
      out.push({ t, price: p.price, volume: p.volume });
    }
  }
  return out;
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
  const bars = uPlot.paths.bars!({ size: [0.7, 14, 1] });
  plot = new uPlot(
    {
      width: Math.max(200, container.clientWidth),
      height: container.clientWidth < 500 ? 220 : 280,
      scales: {
        x: { time: true },
        price: { auto: true },
        // Volume bars keep to the lowest quarter of the chart.
        volume: { range: (_u, _min, max) => [0, Math.max(1, max) * 4] },
      },
      series: [
        { value: (_u: uPlot, v: number | null) => v === null ? "–" : formatClock(v) },
        {
          label: "Price",
          scale: "price",
          stroke: "#58a6ff",
          width: 2,
          value: (_u: uPlot, v: number | null) => formatPrice(v),
        },
        {
          label: `SMA(${SMA_PERIOD})`,
          scale: "price",
          stroke: "#f0b429",
          width: 1.5,
          dash: [6, 4],
          value: (_u: uPlot, v: number | null) => formatPrice(v),
        },
        {
          label: "Volume",
          scale: "volume",
          stroke: "rgba(139, 148, 158, 0.8)",
          fill: "rgba(139, 148, 158, 0.35)",
          paths: bars,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => formatCount(v),
        },
        {
          label: "Alerts",
          scale: "price",
          stroke: "#f85149",
          paths: () => null,
          points: { show: true, size: 9, width: 2, stroke: "#f85149", fill: "#0d1117" },
          value: (_u: uPlot, v: number | null) => v === null ? "–" : "alert",
        },
      ],
      axes: [
        {
          ...axis,
          space: 80,
          values(_u: uPlot, splits: number[]) {
            const labels = splits.map(formatClock);
            container.dataset.xLabels = labels.join(" ");
            return labels;
          },
        },
        { ...axis, scale: "price", size: 64 },
      ],
      legend: { live: true },
    },
    [[], [], [], [], []],
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
  const buckets = bucketsOf(chartPoints);
  const prices = buckets.map((b) => b.price);
  const marked = new Set((alertMarks.get(selected ?? "") ?? new Map()).values());
  const marks = buckets.map((b) => marked.has(b.t) ? b.price : null);
  chart.setData([
    buckets.map((b) => b.t),
    prices,
    smaSeries(prices, SMA_PERIOD),
    buckets.map((b) => b.volume),
    marks,
  ]);
  const container = byId("chart");
  container.dataset.points = String(buckets.length);
  container.dataset.ticks = String(chartPoints.length);
  container.dataset.alerts = String(marks.filter((m) => m !== null).length);
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

function markAlert(alert: AlertJson): void {
  if (alert.quote_timestamp === null) return;
  let marks = alertMarks.get(alert.symbol);
  if (marks === undefined) {
    marks = new Map();
    alertMarks.set(alert.symbol, marks);
  }
  marks.set(alert.id, alert.quote_timestamp);
  if (marks.size > MAX_MARKS) marks.delete(marks.keys().next().value!);
  if (alert.symbol === selected) scheduleChart();
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
  chartPoints = mergePoints(stored.map(pointOf), chartPoints, livePoints.get(symbol) ?? []);
  scheduleChart();
}

async function loadAlertMarks(symbol: string): Promise<void> {
  const alerts = await getJson<AlertJson[]>(
    `/api/alerts?symbol=${encodeURIComponent(symbol)}&limit=${MAX_MARKS}`,
  ).catch(() => []);
  for (const alert of alerts) markAlert(alert);
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
  loadAlertMarks(symbol);
  refreshIndicators(symbol);
}

// ---- Alerts ----

function showAlert(alert: AlertJson, fresh: boolean): void {
  markAlert(alert);
  if (alertIds.has(alert.id)) return;
  alertIds.add(alert.id);
  const item = el("li", fresh ? "new" : "");
  item.dataset.id = alert.id;
  // The quote's market time; when the drain wrote it is in the tooltip.
  const market = alert.quote_timestamp;
  const time = el("time", "", market === null ? formatTime(alert.datetime) : formatClock(market));
  time.dateTime = market === null ? alert.datetime : new Date(market * 1000).toISOString();
  time.title = `written ${formatTime(alert.datetime)}`;
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
      chartPoints.push(pointOf(quote));
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
