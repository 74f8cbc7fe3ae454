// scanHead: the one pass over node's raw header list that finds a body and a second Host, in any case.
import { describe, expect, it } from "vitest";
import { DUPLICATE_HOST, HAS_BODY, scanHead } from "../src/http1.js";

describe("scanHead", () => {
  it("finds Content-Length and Transfer-Encoding in any case", () => {
    expect(scanHead(["Host", "a", "Content-Length", "3"])).toBe(HAS_BODY);
    expect(scanHead(["host", "a", "CONTENT-length", "3"])).toBe(HAS_BODY);
    expect(scanHead(["Host", "a", "TRANSFER-ENCODING", "chunked"])).toBe(HAS_BODY);
    expect(scanHead(["Host", "a", "transfer-encoding", "chunked"])).toBe(HAS_BODY);
  });

  it("counts Host in any case, and only Host", () => {
    expect(scanHead(["Host", "a"])).toBe(0);
    expect(scanHead(["HOST", "a", "hOsT", "b"])).toBe(DUPLICATE_HOST);
    expect(scanHead(["host", "a", "Hose", "b", "hosT", "c"])).toBe(DUPLICATE_HOST);
    expect(scanHead(["Host", "a", "Hose", "b", "Post", "c"])).toBe(0);
  });

  it("leaves names of the same length that differ alone", () => {
    expect(scanHead(["Content-Lengtx", "3", "Transfer-Encodinh", "x", "content_length", "3"])).toBe(0);
    // "-" is not a letter: its upper-case neighbour in ASCII ("\r") does not match it
    expect(scanHead(["content\rlength", "3"])).toBe(0);
    expect(scanHead([])).toBe(0);
  });
});
