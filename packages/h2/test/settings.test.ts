import { ArgumentError, ProtocolError } from "@hyperwire/core";
import { describe, expect, it } from "vitest";
import { H2GoAwayError, H2NegotiationError, H2StreamResetError, h2ErrorCodeName } from "../src/errors.js";
import { HTTP2Settings, MAX_WINDOW_SIZE } from "../src/settings.js";

describe("HTTP2Settings", () => {
  it("defaults to the RFC windows", () => {
    const s = new HTTP2Settings();
    expect(s.initialWindowSize).toBe(65_535);
    expect(s.connectionWindowSize).toBe(65_535);
    expect(Object.isFrozen(s)).toBe(true);
  });

  it("accepts the bounds", () => {
    expect(new HTTP2Settings({ initialWindowSize: 1 }).initialWindowSize).toBe(1);
    const big = new HTTP2Settings({
      initialWindowSize: MAX_WINDOW_SIZE,
      connectionWindowSize: MAX_WINDOW_SIZE,
    });
    expect(big.connectionWindowSize).toBe(2 ** 31 - 1);
  });

  it.each([
    [{ initialWindowSize: 0 }, "initialWindowSize"],
    [{ initialWindowSize: 2 ** 31 }, "initialWindowSize"],
    [{ initialWindowSize: 1.5 }, "initialWindowSize"],
    [{ initialWindowSize: Number.NaN }, "initialWindowSize"],
    [{ connectionWindowSize: 65_534 }, "connectionWindowSize"],
    [{ connectionWindowSize: 2 ** 31 }, "connectionWindowSize"],
    [{ connectionWindowSize: "1" as unknown as number }, "connectionWindowSize"],
  ])("rejects %o with an ArgumentError naming the field", (init, field) => {
    expect(() => new HTTP2Settings(init)).toThrow(ArgumentError);
    expect(() => new HTTP2Settings(init)).toThrow(field);
  });

  it("from() takes an instance, an init object or nothing", () => {
    const s = new HTTP2Settings({ initialWindowSize: 1 << 20 });
    expect(HTTP2Settings.from(s)).toBe(s);
    expect(HTTP2Settings.from({ initialWindowSize: 1 << 20 }).initialWindowSize).toBe(1 << 20);
    expect(HTTP2Settings.from(undefined).initialWindowSize).toBe(65_535);
    expect(() => HTTP2Settings.from(5 as never)).toThrow(ArgumentError);
  });
});

describe("h2 errors", () => {
  it("name the codes of RFC 9113", () => {
    expect(h2ErrorCodeName(0)).toBe("NO_ERROR");
    expect(h2ErrorCodeName(7)).toBe("REFUSED_STREAM");
    expect(h2ErrorCodeName(11)).toBe("ENHANCE_YOUR_CALM");
    expect(h2ErrorCodeName(99)).toBe("UNKNOWN_99");
  });

  it("are ProtocolErrors with stable codes", () => {
    const reset = new H2StreamResetError(7);
    expect(reset).toBeInstanceOf(ProtocolError);
    expect(reset.code).toBe("HW_H2_STREAM_RESET");
    expect(reset.codeName).toBe("REFUSED_STREAM");
    expect(reset.refused).toBe(true);
    expect(new H2StreamResetError(8).refused).toBe(false);
    const away = new H2GoAwayError(0, 5);
    expect(away.code).toBe("HW_H2_GOAWAY");
    expect(away.message).toContain("last stream 5");
    const neg = new H2NegotiationError("no h2", "http/1.1");
    expect(neg.negotiated).toBe("http/1.1");
    expect(neg.name).toBe("H2NegotiationError");
  });
});
