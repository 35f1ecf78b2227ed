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

Deno.test("numbers decode exactly as Number() reads them, plain decimals and every other form", () => {
  const random = createRandom(17);
  const texts = [
    "-0",
    "0",
    "0.1",
    "007",
    "12.",
    ".5",
    "-.5",
    "1e5",
    "1.5E-3",
    "+3",
    " 12",
    "0x10",
    "123456789012345",
    "1234567890123456",
    "9007199254740993",
    "0.000000000000001",
    "1.00000000000000000001",
    "1.7976931348623157e308",
  ];
  for (let i = 0; i < 20000; i++) {
    const digits = Math.floor(random() * 16);
    const text = (random() * 10 ** Math.floor(random() * 12)).toFixed(digits);
    texts.push(random() < 0.5 ? `-${text}` : text);
  }
  for (const text of texts) {
    const fields = ["symbol", "AAPL", "price", "1", "volume", "1", "timestamp", "1700000000"];
    const expected = Number(text);
    let decoded: number | undefined;
    try {
      decoded = decodeQuote([...fields, "open", text]).open;
    } catch {
      decoded = undefined;
    }
    if (Number.isFinite(expected)) {
      assert.ok(Object.is(decoded, expected), `open "${text}" decoded as ${decoded}`);
    } else {
      assert.equal(decoded, undefined, `open "${text}" is not a number`);
    }
  }
});

Deno.test("a quote with every field and one missing some decode to the same values", () => {
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL"],
    ticks: 5,
    now: Date.UTC(2024, 0, 2, 15, 0, 0),
    random: createRandom(3),
  });
  for (const quote of quotes) {
    const fields = encodeQuote(quote);
    const full = decodeQuote(fields);
    assert.equal(Object.keys(full).length, 12);
    const withoutLow = fields.filter((_, i) => fields[i - (i % 2)] !== "low");
    const partial = decodeQuote(withoutLow);
    assert.equal("low" in partial, false);
    assert.deepEqual({ ...partial, low: full.low }, full);
    assert.deepEqual(decodeQuote(fieldsToRecord(fields)), full);
  }
});

Deno.test("field names decode by their whole name, not their first letter", () => {
  const quote = decodeQuote([
    "symbol",
    "AAPL",
    "price",
    "2",
    "volume",
    "3",
    "timestamp",
    "1700000000",
    "sym",
    "ZZZ",
    "prices",
    "9",
    "lows",
    "1",
    "h",
    "4",
  ]);
  assert.deepEqual(quote, {
    symbol: "AAPL",
    price: 2,
    volume: 3,
    timestamp: 1700000000,
    datetime: "2023-11-14T22:13:20.000Z",
  });
});
