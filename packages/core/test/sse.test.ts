import { describe, expect, test } from "vitest";
import { ArgumentError, formatEvent, SSEEvent } from "../src/index.js";

interface Parsed {
  type: string;
  data: string;
  lastEventId: string;
  retry: number | undefined;
}

/**
 * The WHATWG event-stream interpretation (HTML §9.2.6), written from the spec for these tests: lines
 * end at CRLF, CR or LF; a blank line dispatches; `data` lines join with LF; a comment is ignored.
 */
function parseStream(text: string): Parsed[] {
  const events: Parsed[] = [];
  let data = "";
  let type = "";
  let lastEventId = "";
  let retry: number | undefined;
  const lines = text.split(/\r\n|\r|\n/);
  // The last piece follows the final line break: an incomplete line the spec does not process.
  lines.pop();
  for (const line of lines) {
    if (line === "") {
      if (data !== "") {
        events.push({ type: type || "message", data: data.slice(0, -1), lastEventId, retry });
      }
      data = "";
      type = "";
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data += `${value}\n`;
    else if (field === "event") type = value;
    else if (field === "id" && !value.includes("\0")) lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) retry = Number(value);
  }
  return events;
}

describe("SSEEvent construction", () => {
  test("keeps data, event, id and retry, and lists them in fields", () => {
    const ev = new SSEEvent("hello", { event: "greeting", id: "7", retry: 1500 });
    expect(ev.data).toBe("hello");
    expect(ev.event).toBe("greeting");
    expect(ev.id).toBe("7");
    expect(ev.retry).toBe(1500);
    expect(Object.fromEntries(ev.fields)).toEqual({
      data: "hello",
      event: "greeting",
      id: "7",
      retry: "1500",
    });
  });

  test("optional fields stay undefined; extra parsed fields are kept", () => {
    const ev = new SSEEvent("x", { fields: [["custom", "1"]] });
    expect(ev.event).toBeUndefined();
    expect(ev.id).toBeUndefined();
    expect(ev.retry).toBeUndefined();
    expect(ev.fields.get("custom")).toBe("1");
    expect(ev.fields.get("data")).toBe("x");
  });

  test.each([
    ["event", { event: "a\nb" }, "LF"],
    ["event", { event: "a\rb" }, "CR"],
    ["event", { event: "a\r\nevent: evil" }, "CR"],
    ["event", { event: "a\0" }, "NUL"],
    ["id", { id: "1\n\ndata: injected" }, "LF"],
    ["id", { id: "1\r" }, "CR"],
    ["id", { id: "1\0" }, "NUL"],
  ])("%s with a line break or NUL is an ArgumentError (%j)", (_name, init, what) => {
    let caught: unknown;
    try {
      new SSEEvent("data", init);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ArgumentError);
    expect((caught as ArgumentError).code).toBe("HW_ARGUMENT");
    expect((caught as Error).message).toContain(what);
  });

  test.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("retry %s is an ArgumentError", (retry) => {
    expect(() => new SSEEvent("x", { retry })).toThrow(ArgumentError);
  });

  test("retry 0 is allowed", () => {
    expect(formatEvent(new SSEEvent("x", { retry: 0 }))).toBe("retry: 0\ndata: x\n\n");
  });

  test("non-string data, event or id (from untyped callers) is an ArgumentError", () => {
    expect(() => new SSEEvent(42 as unknown as string)).toThrow(ArgumentError);
    expect(() => new SSEEvent("x", { event: 1 as unknown as string })).toThrow(ArgumentError);
    expect(() => new SSEEvent("x", { id: {} as unknown as string })).toThrow(ArgumentError);
  });
});

describe("formatEvent", () => {
  test("a one-line event is one data line and the blank line that dispatches it", () => {
    expect(formatEvent(new SSEEvent("hello"))).toBe("data: hello\n\n");
  });

  test("fields come in event, id, retry, data order", () => {
    expect(formatEvent(new SSEEvent("d", { retry: 10, id: "i", event: "e" }))).toBe(
      "event: e\nid: i\nretry: 10\ndata: d\n\n",
    );
  });

  test("CRLF, CR and LF in data each start a new data line", () => {
    expect(formatEvent(new SSEEvent("a\r\nb\rc\nd"))).toBe("data: a\ndata: b\ndata: c\ndata: d\n\n");
  });

  test("empty data and empty lines survive as empty data lines", () => {
    expect(formatEvent(new SSEEvent(""))).toBe("data: \n\n");
    expect(formatEvent(new SSEEvent("\n"))).toBe("data: \ndata: \n\n");
  });

  test("data that looks like fields cannot inject them: it stays inside data lines", () => {
    const evil = "x\n\nevent: admin\nid: 999\ndata: injected";
    const text = formatEvent(new SSEEvent(evil, { event: "user" }));
    const parsed = parseStream(text);
    expect(parsed).toHaveLength(1);
    expect(parsed[0]!.type).toBe("user");
    expect(parsed[0]!.data).toBe("x\n\nevent: admin\nid: 999\ndata: injected");
    expect(parsed[0]!.lastEventId).toBe("");
  });

  test("round trip through the WHATWG interpretation gives the same values back", () => {
    const events = [
      new SSEEvent("plain"),
      new SSEEvent(" leading space and trailing space ", { event: "spaces", id: "a b" }),
      new SSEEvent("line1\nline2\r\nline3\rline4", { id: "2", retry: 3000 }),
      new SSEEvent("unicode: é ☃ 😀", { event: "ü" }),
      new SSEEvent(":not a comment", { event: "colon" }),
      new SSEEvent(""),
    ];
    const parsed = parseStream(events.map(formatEvent).join(""));
    expect(parsed.map((p) => p.data)).toEqual(events.map((e) => e.data.replace(/\r\n|\r/g, "\n")));
    expect(parsed.map((p) => p.type)).toEqual(["message", "spaces", "message", "ü", "colon", "message"]);
    expect(parsed.map((p) => p.lastEventId)).toEqual(["", "a b", "2", "2", "2", "2"]);
    expect(parsed[2]!.retry).toBe(3000);
  });
});
