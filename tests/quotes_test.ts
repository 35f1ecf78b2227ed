import assert from "node:assert/strict";
import { decodeQuote, encodeQuote, fieldsToRecord, quoteToJson } from "../shared/market/quotes.ts";
import { createRandom, initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";

const ISO_WITH_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

Deno.test("an emitted quote carries the tutorial's fields in the tutorial's formats, plus session_volume", () => {
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL", "TSLA"],
    ticks: 30,
    now: Date.UTC(2024, 0, 2, 15, 0, 0, 437),
    random: createRandom(5),
  });
  for (const quote of quotes) {
    const record = fieldsToRecord(encodeQuote(quote));
    for (
      const field of [
        "timestamp",
        "datetime",
        "symbol",
        "price",
        "volume",
        "change",
        "change_percent",
        "session_volume",
      ]
    ) {
      assert.ok(record[field] !== undefined && record[field] !== "", `${field} is missing`);
    }
    // Python's int() accepts only digits: int(fields['timestamp']) must work.
    assert.match(record.timestamp, /^\d+$/);
    assert.match(record.datetime, ISO_WITH_MS);
    assert.equal(Number(record.timestamp), Math.floor(Date.parse(record.datetime) / 1000));
    assert.match(record.volume, /^\d+$/);
    assert.match(record.session_volume, /^\d+$/);
    assert.ok(Number(record.session_volume) >= Number(record.volume));
    assert.ok(Number.isFinite(Number(record.price)) && Number(record.price) > 0);
    assert.ok(Number.isFinite(Number(record.change_percent)));
  }
});

Deno.test("a tutorial entry with time.time() keeps its milliseconds in datetime and whole seconds in timestamp", () => {
  const quote = decodeQuote([
    "symbol",
    "IBM",
    "price",
    "150.25",
    "volume",
    "1000",
    "timestamp",
    "1700000000.123",
  ]);
  assert.equal(quote.timestamp, 1700000000);
  assert.equal(quote.datetime, "2023-11-14T22:13:20.123Z");
  assert.equal(quote.sessionVolume, undefined);
  assert.equal(quoteToJson(quote).session_volume, null);
});

Deno.test("a tutorial entry with int(time.time()) and its own datetime is read as sent", () => {
  const quote = decodeQuote({
    symbol: "MSFT",
    price: "410.5",
    volume: "12",
    timestamp: "1700000000",
    datetime: "2023-11-14T22:13:20.500000",
    change: "1.5",
    change_percent: "0.37",
  });
  assert.equal(quote.timestamp, 1700000000);
  assert.equal(quote.datetime, "2023-11-14T22:13:20.500000");
  assert.equal(quote.change, 1.5);
  assert.equal(quote.changePercent, 0.37);
});

Deno.test("quoteToJson shows session_volume beside the tick's volume", () => {
  const [quote] = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL"],
    now: Date.UTC(2024, 0, 2, 15),
    random: createRandom(1),
  }).quotes;
  const json = quoteToJson(quote, { id: "1-0" });
  assert.equal(json.id, "1-0");
  assert.equal(json.volume, quote.volume);
  assert.equal(json.session_volume, quote.sessionVolume);
  assert.equal(json.timestamp, Math.floor(Date.UTC(2024, 0, 2, 15) / 1000));
});
