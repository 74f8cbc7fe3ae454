import { STATUS_CODES } from "node:http";
import { describe, expect, test } from "vitest";
import { STATUS_TEXTS, statusText } from "../src/index.js";

describe("statusText", () => {
  test.each([
    [100, "Continue"],
    [101, "Switching Protocols"],
    [103, "Early Hints"],
    [200, "OK"],
    [204, "No Content"],
    [206, "Partial Content"],
    [301, "Moved Permanently"],
    [304, "Not Modified"],
    [308, "Permanent Redirect"],
    [400, "Bad Request"],
    [404, "Not Found"],
    [413, "Content Too Large"],
    [418, "I'm a teapot"],
    [422, "Unprocessable Content"],
    [429, "Too Many Requests"],
    [500, "Internal Server Error"],
    [503, "Service Unavailable"],
    [511, "Network Authentication Required"],
  ])("%i is %j", (code, text) => {
    expect(statusText(code)).toBe(text);
    expect(STATUS_TEXTS[code]).toBe(text);
  });

  test.each([0, 99, 199, 299, 306, 419, 599, 600, 999, -1, 200.5, Number.NaN])(
    "%d is unknown: empty string",
    (code) => {
      expect(statusText(code)).toBe("");
    },
  );

  test("every registered code Node knows has a phrase (RFC 9110 names where they differ)", () => {
    for (const code of Object.keys(STATUS_CODES).map(Number)) {
      if (code === 509) continue; // not registered with IANA
      expect(statusText(code), String(code)).not.toBe("");
    }
  });

  test("the table is frozen", () => {
    expect(Object.isFrozen(STATUS_TEXTS)).toBe(true);
  });
});
