import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, test } from "vitest";
import { ArgumentError, Form, Multipart, ParseError, parseMultipart } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "hw-form-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function encode(form: Form): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of form) chunks.push(c);
  return Buffer.concat(chunks);
}

describe("Form", () => {
  test("form-data round trip: strings, bytes, Blobs, files, explicit parts, repeated names", async () => {
    const file = join(dir, "a.txt");
    writeFileSync(file, "file content\r\n--not a boundary");
    const form = new Form({
      title: "héllo",
      tags: ["a", "b"],
      raw: new Uint8Array([0, 1, 2, 255]),
      blob: new Blob(["blob data"], { type: "text/plain" }),
      upload: Form.file(file),
      img: new Multipart(new Uint8Array([9, 9]), { filename: "x.png", contentType: "image/png" }),
    });
    expect(form.contentType).toBe(`multipart/form-data; boundary=${form.boundary}`);
    expect(form.boundary.length).toBeGreaterThanOrEqual(50);
    expect(form.replayable).toBe(true);
    const body = await encode(form);
    expect(form.length).toBe(body.length);
    const parts = parseMultipart(form.contentType, body);
    expect(parts.map((p) => p.name)).toEqual(["title", "tags", "tags", "raw", "blob", "upload", "img"]);
    expect(Buffer.from(parts[0]!.data).toString()).toBe("héllo");
    expect(Buffer.from(parts[3]!.data)).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(parts[4]!.contentType).toBe("text/plain");
    expect(parts[5]!.filename).toBe("a.txt");
    expect(parts[5]!.contentType).toBe("application/octet-stream");
    expect(Buffer.from(parts[5]!.data).toString()).toBe("file content\r\n--not a boundary");
    expect(parts[6]).toMatchObject({ filename: "x.png", contentType: "image/png" });
    // Replayable: the second encoding is the same bytes.
    expect(await encode(form)).toEqual(body);
  });

  test("names and file names are escaped per HTML (quote and newlines) and read back", async () => {
    const form = new Form({ 'a"b\r\nc': new Multipart("v", { filename: 'f"\n.txt' }) });
    const body = await encode(form);
    expect(body.toString()).toContain('name="a%22b%0D%0Ac"; filename="f%22%0D%0A.txt"');
    const [part] = parseMultipart(form.contentType, body);
    expect(part).toMatchObject({ name: 'a"b\r\nc', filename: 'f"\r\n.txt' });
  });

  test("a stream part makes the form unsized and not replayable; a second send is an ArgumentError", async () => {
    const form = new Form([
      ["s", Readable.from([Buffer.from("one "), "two"])],
      ["t", "x"],
    ]);
    expect(form.length).toBeUndefined();
    expect(form.replayable).toBe(false);
    const parts = parseMultipart(form.contentType, await encode(form));
    expect(Buffer.from(parts[0]!.data).toString()).toBe("one two");
    await expect(encode(form)).rejects.toBeInstanceOf(ArgumentError);
  });

  test("multipart/mixed", async () => {
    const form = Form.mixed([
      new Multipart('{"a":1}', { contentType: "application/json" }),
      new Multipart("raw", { filename: "r.bin", contentTransferEncoding: "binary" }),
    ]);
    expect(form.contentType).toMatch(/^multipart\/mixed; boundary=/);
    const body = await encode(form);
    const parts = parseMultipart(form.contentType, body);
    expect(parts).toHaveLength(2);
    expect(parts[0]).toMatchObject({ name: "", contentType: "application/json" });
    expect(parts[1]!.headers.get("content-transfer-encoding")).toBe("binary");
    expect(parts[1]!.filename).toBe("r.bin");
  });

  test("boundaries: valid ones (quoted when not a token), invalid ones refused", async () => {
    const form = new Form({ a: "1" }, { boundary: "simple boundary?" });
    expect(form.contentType).toBe('multipart/form-data; boundary="simple boundary?"');
    expect(parseMultipart(form.contentType, await encode(form))[0]!.name).toBe("a");
    for (const bad of ["", "x".repeat(71), "ends in space ", "semi;colon", 'quote"', "é"]) {
      expect(() => new Form({ a: "1" }, { boundary: bad })).toThrow(ArgumentError);
    }
    expect(new Form({}, { boundary: "x".repeat(70) }).boundary).toHaveLength(70);
  });

  test("bad entries and missing files are ArgumentErrors", () => {
    expect(() => new Form({ a: 5 as unknown as string })).toThrow(ArgumentError);
    expect(() => Form.file(join(dir, "missing"))).toThrow(ArgumentError);
    expect(() => new Form({}, { subtype: "alt" as "mixed" })).toThrow(ArgumentError);
  });

  test("an empty form encodes to its closing delimiter", async () => {
    const form = new Form({}, { boundary: "b" });
    expect((await encode(form)).toString()).toBe("--b--\r\n");
    expect(parseMultipart(form.contentType, await encode(form))).toEqual([]);
  });
});

describe("parseMultipart", () => {
  const body = Buffer.from(
    'preamble\r\n--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a b.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ  \r\n\r\nno headers\r\n--XyZ--\r\nepilogue',
  );

  test("case-insensitive media type and parameter names, quoted values, preamble and epilogue", () => {
    for (const ct of [
      'Multipart/Form-Data; BOUNDARY="XyZ"',
      "multipart/form-data;boundary=XyZ",
      "multipart/form-data ; charset=utf-8; boundary=XyZ",
    ]) {
      const parts = parseMultipart(ct, body);
      expect(parts).toHaveLength(2);
      expect(parts[0]).toMatchObject({ name: "f", filename: "a b.txt", contentType: "text/plain" });
      expect(Buffer.from(parts[0]!.data).toString()).toBe("hello");
      expect(Buffer.from(parts[1]!.data).toString()).toBe("no headers");
    }
  });

  test("malformed input is a ParseError", () => {
    const bad: [string, string][] = [
      ["text/plain", "x"],
      ["multipart/form-data", "x"],
      ["multipart/form-data; boundary=", "x"],
      [`multipart/form-data; boundary=${"a".repeat(71)}`, "x"],
      ['multipart/form-data; boundary="XyZ', "x"],
      ["multipart/form-data; boundary=XyZ", "no delimiter at all"],
      ["multipart/form-data; boundary=XyZ", "--XyZ\r\nA: b\r\n\r\nunterminated"],
      ["multipart/form-data; boundary=XyZ", "--XyZ\r\nno blank line\r\n--XyZ--"],
      ["multipart/form-data; boundary=XyZ", "--XyZ\r\nbad header line\r\n\r\nx\r\n--XyZ--"],
      ["multipart/form-data; boundary=XyZ", "--XyZjunk\r\n\r\nx\r\n--XyZ--"],
      ["not a media type", "x"],
    ];
    for (const [ct, b] of bad) expect(() => parseMultipart(ct, Buffer.from(b)), ct + b).toThrow(ParseError);
  });
});
