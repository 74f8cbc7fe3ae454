import { describe, expect, test } from "vitest";
import { ArgumentError, ParseError, SSEEvent, SSEParser } from "../src/index.js";

type Plain = { data: string; event?: string; id?: string; retry?: number };

function plain(ev: SSEEvent): Plain {
  const p: Plain = { data: ev.data };
  if (ev.event !== undefined) p.event = ev.event;
  if (ev.id !== undefined) p.id = ev.id;
  if (ev.retry !== undefined) p.retry = ev.retry;
  return p;
}

/** Parses `bytes` fed as the given chunks. */
function parseChunks(chunks: Uint8Array[], options = {}): Plain[] {
  const parser = new SSEParser(options);
  const out: Plain[] = [];
  for (const c of chunks) for (const ev of parser.push(c)) out.push(plain(ev));
  expect(parser.end()).toEqual([]);
  return out;
}

function parse(text: string | Uint8Array, options = {}): Plain[] {
  return parseChunks([typeof text === "string" ? Buffer.from(text, "utf8") : text], options);
}

const STREAM =
  "\uFEFFretry: 1500\r\nid: 1\r\nevent: greet\r\ndata: héllo\r\ndata:  wörld 🌍\r\n\r\n" +
  ": a comment\n" +
  "data: second\rid: 2\r\r" +
  "data:third\n\n" +
  "id: bad\0id\ndata: fourth\r\n\n" +
  "retry: 12x\ndata\n\n" +
  "custom: x\ndata: fifth\n\n" +
  "data: never dispatched";

const EXPECTED: Plain[] = [
  { data: "héllo\n wörld 🌍", event: "greet", id: "1", retry: 1500 },
  { data: "second", id: "2", retry: 1500 },
  { data: "third", id: "2", retry: 1500 },
  { data: "fourth", id: "2", retry: 1500 },
  { data: "", id: "2", retry: 1500 },
  { data: "fifth", id: "2", retry: 1500 },
];

describe("SSEParser", () => {
  test("parses a stream with BOM, CR/LF/CRLF, comments, id and retry persistence, NUL ids", () => {
    expect(parse(STREAM)).toEqual(EXPECTED);
  });

  test("every split of the stream into two chunks gives the same events", () => {
    const bytes = Buffer.from(STREAM, "utf8");
    for (let i = 0; i <= bytes.length; i++) {
      expect(parseChunks([bytes.subarray(0, i), bytes.subarray(i)])).toEqual(EXPECTED);
    }
  });

  test("one byte at a time gives the same events", () => {
    const bytes = Buffer.from(STREAM, "utf8");
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
    expect(parseChunks(chunks)).toEqual(EXPECTED);
  });

  test("a CR ending one chunk and an LF starting the next are one line end", () => {
    expect(parseChunks([Buffer.from("data: a\r"), Buffer.from("\ndata: b\r\n\r\n")])).toEqual([
      { data: "a\nb" },
    ]);
  });

  test("a BOM is stripped only at the start", () => {
    expect(parse("\uFEFFdata: a\n\n\uFEFFdata: b\n\n")).toEqual([{ data: "a" }]);
  });

  test("an unterminated event is not dispatched at the end", () => {
    expect(parse("data: a\n")).toEqual([]);
    expect(parse("data: a")).toEqual([]);
  });

  test("an event without data is not dispatched, and its type does not leak into the next", () => {
    expect(parse("event: x\n\ndata: y\n\n")).toEqual([{ data: "y" }]);
  });

  test("an empty id resets the last event id; a retry of non-digits is ignored", () => {
    expect(parse("id: 7\ndata: a\n\nid\ndata: b\n\nretry: -5\ndata: c\n\n")).toEqual([
      { data: "a", id: "7" },
      { data: "b" },
      { data: "c" },
    ]);
  });

  test("unknown fields are kept in fields; lastEventId and retry are readable", () => {
    const parser = new SSEParser();
    const [ev] = parser.push(Buffer.from("foo: 1\nfoo: 2\nid: 9\nretry: 30\ndata: x\n\n"));
    expect(ev!.fields.get("foo")).toBe("1\n2");
    expect(parser.lastEventId).toBe("9");
    expect(parser.retry).toBe(30);
  });

  test("a line over maxLineBytes is a ParseError, whole or split", () => {
    expect(() => parse(`data: ${"x".repeat(100)}\n\n`, { maxLineBytes: 50 })).toThrow(ParseError);
    const parser = new SSEParser({ maxLineBytes: 50 });
    parser.push(Buffer.from(`data: ${"x".repeat(30)}`));
    expect(() => parser.push(Buffer.from("x".repeat(30)))).toThrow(ParseError);
    // Bytes, not characters: 20 three-byte characters are 60 bytes.
    expect(() => parse(`data:${"€".repeat(20)}\n\n`, { maxLineBytes: 50 })).toThrow(ParseError);
    expect(parse(`data:${"€".repeat(15)}\n\n`, { maxLineBytes: 50 })).toHaveLength(1);
  });

  test("an event over maxEventBytes is a ParseError; 0 disables both limits", () => {
    const many = "data: 0123456789\n".repeat(20);
    expect(() => parse(`${many}\n`, { maxEventBytes: 100 })).toThrow(ParseError);
    expect(parse(`${many}\n`, { maxEventBytes: 0, maxLineBytes: 0 })).toHaveLength(1);
  });

  test("bad limits are ArgumentErrors; push after end is a ParseError", () => {
    expect(() => new SSEParser({ maxLineBytes: -1 })).toThrow(ArgumentError);
    const parser = new SSEParser();
    parser.end();
    expect(() => parser.push(Buffer.from("data: x\n\n"))).toThrow(ParseError);
  });

  test("an event type holding NUL is a ParseError, not a crash", () => {
    expect(() => parse("event: a\0b\ndata: x\n\n")).toThrow(ParseError);
  });

  test("round trip with formatEvent output", async () => {
    const { formatEvent } = await import("../src/index.js");
    const ev = new SSEEvent("line 1\r\nline 2\rline 3", { event: "e", id: "42", retry: 5 });
    expect(parse(formatEvent(ev))).toEqual([
      { data: "line 1\nline 2\nline 3", event: "e", id: "42", retry: 5 },
    ]);
  });
});
