// maxFragmentation: a message may arrive in at most this many frames (HTTP.jl's `maxfragmentation`,
// 1024 by default). Without a bound, a peer could send a 16 MiB message as millions of 1-byte
// fragments, each held as its own buffer until the message ends: far more memory than its bytes.
import { describe, expect, test } from "vitest";
import { open, serverAddr } from "../src/index.js";
import {
  checkUnhandledRejections,
  frame,
  handRolledServer,
  RawClient,
  Resources,
  waitFor,
  within,
} from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

/** Writes one binary message as `count` frames of one byte each (the first, then continuations). */
function fragmented(count: number, mask: boolean): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    frames.push(frame(i === 0 ? 2 : 0, Buffer.from([i & 0xff]), { fin: i === count - 1, mask }));
  }
  return Buffer.concat(frames);
}

describe("maxFragmentation on the server", () => {
  test("a message in exactly 1024 frames (the default) is delivered whole", async () => {
    const received: number[] = [];
    const server = await res.listen(async (ws) => {
      for await (const m of ws) received.push((m as Uint8Array).byteLength);
    });
    const raw = await RawClient.connect(server.port);
    raw.write(fragmented(1024, true));
    await waitFor(() => received.length === 1, 3_000, "the message");
    expect(received).toEqual([1024]);
    raw.destroy();
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("one frame more than the default closes the connection with 1008 and the server keeps serving", async () => {
    const outcomes: unknown[] = [];
    const server = await res.listen(async (ws) => {
      try {
        for await (const m of ws) await ws.send(m);
        outcomes.push("ended quietly");
      } catch (e) {
        outcomes.push(e);
      }
    });
    const raw = await RawClient.connect(server.port);
    raw.write(fragmented(1025, true));
    expect(await raw.closeCode()).toBe(1008);
    raw.destroy();
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
    expect(outcomes).toHaveLength(1);
    expect((outcomes[0] as { closeCode?: number }).closeCode).toBe(1008);
    const reply = await open(
      `ws://${serverAddr(server)}/`,
      async (ws) => {
        await ws.send("still here?");
        return ws.receive();
      },
      { proxy: null },
    );
    expect(reply).toBe("still here?");
  });

  test("a smaller maxFragmentation is enforced, and 0 means no limit", async () => {
    const strict = await res.listen(
      async (ws) => {
        for await (const _ of ws);
      },
      { maxFragmentation: 4 },
    );
    const a = await RawClient.connect(strict.port);
    a.write(fragmented(5, true));
    expect(await a.closeCode()).toBe(1008);
    a.destroy();

    const received: number[] = [];
    const unlimited = await res.listen(
      async (ws) => {
        for await (const m of ws) received.push((m as Uint8Array).byteLength);
      },
      { maxFragmentation: 0 },
    );
    const b = await RawClient.connect(unlimited.port);
    b.write(fragmented(3000, true));
    await waitFor(() => received.length === 1, 3_000, "the message in 3000 frames");
    expect(received).toEqual([3000]);
    b.destroy();
  });

  test("a bad maxFragmentation is an ArgumentError", async () => {
    await expect(res.listen(async () => {}, { maxFragmentation: -1 })).rejects.toThrow(/maxFragmentation/);
    await expect(res.listen(async () => {}, { maxFragmentation: 1.5 })).rejects.toThrow(/maxFragmentation/);
  });
});

describe("maxFragmentation on the client", () => {
  /** A hand-rolled server that sends `count` one-byte fragments right after the handshake. */
  function fragmentingServer(count: number): Promise<{ url: string }> {
    return handRolledServer(res, (socket) => socket.write(fragmented(count, false)));
  }

  test("the client takes 1024 fragments and refuses 1025 with 1008", async () => {
    const ok = await fragmentingServer(1024);
    const ws = await open(ok.url, { proxy: null });
    const m = (await within(ws.receive(), 3_000, "the message")) as Uint8Array;
    expect(m.byteLength).toBe(1024);
    ws.terminate();

    const bad = await fragmentingServer(1025);
    const refused = await open(bad.url, { proxy: null });
    const error = await within(
      refused.receive().then(
        () => null,
        (e: unknown) => e,
      ),
      3_000,
      "the receive to fail",
    );
    expect((error as { closeCode?: number }).closeCode).toBe(1008);
  });
});
