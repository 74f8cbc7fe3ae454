"""An independent RFC 8441 client: python-h2 for HTTP/2, python-websockets' codec for the frames.

    /usr/bin/python3 h2_ws_client.py PORT [--ca CA.pem] [--path /ws] [--get /plain]
        [--protocols other,chat] [--messages 6] [--timeout 15]

On one HTTP/2 connection to 127.0.0.1:PORT (h2c with prior knowledge, or TLS with ALPN h2 when --ca
is given, verifying the server with that CA): checks that the server's first SETTINGS has
ENABLE_CONNECT_PROTOCOL=1, GETs --get, opens a WebSocket with an extended CONNECT to --path
(sec-websocket-version 13, offering --protocols), sends masked text and binary messages (one text
message fragmented across 3 frames, one binary message larger than the HTTP/2 flow-control window)
and a ping, reads the echoes, closes with 1000, expects the server's close frame and END_STREAM,
ends its own side, and GETs --get again. Prints one JSON line with what it saw and exits 0; on any
unmet expectation it still prints the JSON (with "error") and exits 1.
"""

import argparse
import socket
import ssl
import sys
import time

import h2.exceptions
from h2_ws_common import Assembler, FrameReader, H2Peer, PeerFailure, close_payload, emit
from websockets.frames import Close, Frame, Opcode

FRAGMENTED = "fragmented \u2713 message, in three frames"


def build_messages(count):
    """(kind, payload, fragment cut points) for each message; the check mark is cut in two."""
    messages = [
        ("text", "hello from python-h2 \u2713", None),
        ("binary", bytes([0, 1, 2, 127, 128, 254, 255]), None),
        # Byte 12 falls inside the three bytes of U+2713: the UTF-8 is split across frames.
        ("text", FRAGMENTED, (12, 25)),
        ("binary", bytes((i * 31) % 251 for i in range(200_000)), None),
    ]
    for i in range(len(messages), count):
        if i % 2 == 0:
            messages.append(("text", "message %d" % i, None))
        else:
            messages.append(("binary", bytes([i % 256]) * (i + 1), None))
    return messages[:count]


def frames_of(kind, payload, cuts):
    data = payload.encode("utf-8") if kind == "text" else payload
    opcode = Opcode.TEXT if kind == "text" else Opcode.BINARY
    if cuts is None:
        return [Frame(opcode, data)]
    a, b = cuts
    return [
        Frame(opcode, data[:a], fin=False),
        Frame(Opcode.CONT, data[a:b], fin=False),
        Frame(Opcode.CONT, data[b:], fin=True),
    ]


def describe(kind, payload):
    """The JSON form of a message: short ones in full, long ones by length."""
    if kind == "text":
        if len(payload) <= 100:
            return {"type": "text", "text": payload}
        return {"type": "text", "length": len(payload)}
    if len(payload) <= 100:
        return {"type": "binary", "hex": payload.hex()}
    return {"type": "binary", "length": len(payload)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--ca")
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--get", default="/plain")
    parser.add_argument("--protocols", default="other,chat")
    parser.add_argument("--messages", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args()
    if args.messages < 4:
        parser.error("--messages must be at least 4 (text, binary, fragmented, large)")

    out = {}
    try:
        run(args, out)
    except (PeerFailure, OSError, h2.exceptions.H2Error) as failure:
        # Whatever went wrong is reported in the JSON line, which the test shows.
        out["error"] = "%s: %s" % (type(failure).__name__, failure)
        emit(out)
        sys.exit(1)
    emit(out)


def run(args, out):
    deadline = time.monotonic() + args.timeout
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
    scheme = "http"
    if args.ca:
        scheme = "https"
        context = ssl.create_default_context(cafile=args.ca)
        context.set_alpn_protocols(["h2"])
        # server_hostname 127.0.0.1 makes ssl check the certificate's IP address SAN.
        sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        out["alpn"] = sock.selected_alpn_protocol()
        if out["alpn"] != "h2":
            raise PeerFailure("ALPN chose %r, not h2" % out["alpn"])
    sock.settimeout(None)
    peer = H2Peer(sock, client_side=True)
    try:
        converse(peer, args, scheme, deadline, out)
        peer.conn.close_connection()
        peer.flush()
    finally:
        sock.close()


def get(peer, path, authority, scheme, deadline):
    sid = peer.conn.get_next_available_stream_id()
    peer.conn.send_headers(
        sid,
        [(":method", "GET"), (":scheme", scheme), (":path", path), (":authority", authority)],
        end_stream=True,
    )
    peer.flush()
    s = peer.stream(sid)
    peer.run_until(lambda: s.ended or s.reset is not None, deadline, "the answer to GET " + path)
    if s.reset is not None or s.headers is None:
        raise PeerFailure("GET %s got no answer (reset %s)" % (path, s.reset))
    return {"stream": sid, "status": int(s.header(":status")), "body": s.body.decode("utf-8", "replace")}


def converse(peer, args, scheme, deadline, out):
    authority = "127.0.0.1:%d" % args.port
    peer.on_data = lambda s, data: s.body.extend(data) if s.state is None else s.state.take(data)
    peer.start()

    peer.run_until(lambda: peer.settings_frames, deadline, "the server's SETTINGS")
    out["settings"] = peer.settings_frames[0]
    out["enableConnectProtocol"] = peer.conn.remote_settings.enable_connect_protocol
    if out["settings"].get("ENABLE_CONNECT_PROTOCOL") != 1:
        raise PeerFailure("the server's first SETTINGS has no ENABLE_CONNECT_PROTOCOL=1")

    out["before"] = get(peer, args.get, authority, scheme, deadline)

    # The extended CONNECT (RFC 8441 section 4).
    sid = peer.conn.get_next_available_stream_id()
    offered = [p for p in args.protocols.split(",") if p]
    headers = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", scheme),
        (":path", args.path),
        (":authority", authority),
        ("sec-websocket-version", "13"),
    ]
    if offered:
        headers.append(("sec-websocket-protocol", ", ".join(offered)))
    peer.conn.send_headers(sid, headers, end_stream=False)
    peer.flush()
    s = peer.stream(sid)
    ws = ClientSession(peer, sid)
    s.state = ws
    peer.run_until(
        lambda: s.headers is not None or s.reset is not None or s.ended, deadline, "the CONNECT's answer"
    )
    if s.headers is None:
        raise PeerFailure("the CONNECT stream ended without an answer (reset %s)" % s.reset)
    out["connect"] = {
        "stream": sid,
        "status": int(s.header(":status")),
        "subprotocol": s.header("sec-websocket-protocol"),
        "accept": s.header("sec-websocket-accept"),
    }
    if out["connect"]["status"] != 200:
        raise PeerFailure("the CONNECT was answered %d" % out["connect"]["status"])

    echoes = []
    out["echoes"] = echoes
    for index, (kind, payload, cuts) in enumerate(build_messages(args.messages)):
        for frame in frames_of(kind, payload, cuts):
            ws.send(frame)
        if index == 1:
            # A ping between messages; the pong must come back with its payload.
            ws.send(Frame(Opcode.PING, b"are you there"))
        got = ws.next_message(deadline)
        if got is None:
            raise PeerFailure("the server closed instead of echoing message %d" % index)
        got_kind, got_payload, got_frames = got
        echo = describe(got_kind, got_payload)
        echo["ok"] = got_kind == kind and got_payload == payload
        echo["frames"] = got_frames
        echo["sentFrames"] = 1 if cuts is None else 3
        echoes.append(echo)
        if not echo["ok"]:
            raise PeerFailure("the echo of message %d differs from what was sent" % index)
    out["pongs"] = [p.decode("utf-8", "replace") for p in ws.pongs]

    # The close handshake, then END_STREAM both ways (RFC 8441 section 5).
    ws.send(Frame(Opcode.CLOSE, Close(1000, "done").serialize()))
    if ws.next_message(deadline) is not None:
        raise PeerFailure("a message arrived after our close frame")
    out["close"] = ws.close
    peer.run_until(lambda: s.ended or s.reset is not None, deadline, "END_STREAM after the close")
    out["serverEndStream"] = s.ended
    if s.reset is None:
        peer.send(sid, b"", end=True)
    out["framesAfterClose"] = ws.after_close

    out["after"] = get(peer, args.get, authority, scheme, deadline)
    # A reset would have come before the answer to the later GET.
    out["reset"] = s.reset
    out["goaway"] = peer.terminated


class ClientSession:
    """The WebSocket on the CONNECT stream: masked frames out, the server's frames in."""

    def __init__(self, peer, sid):
        self.peer = peer
        self.sid = sid
        self.reader = FrameReader(mask=False)
        self.assembler = Assembler()
        self.frames = []
        self.pongs = []
        self.close = None
        self.after_close = 0

    def take(self, data):
        # A frame the server sends unmasked passes; a masked one raises ProtocolError here.
        try:
            self.frames.extend(self.reader.feed(data))
        except Exception as e:
            raise PeerFailure("bad frame from the server: %s" % e)

    def send(self, frame):
        self.peer.send(self.sid, frame.serialize(mask=True))

    def next_message(self, deadline):
        """The next whole message, or None once the server's close frame arrived."""
        while True:
            while self.frames:
                frame = self.frames.pop(0)
                if self.close is not None:
                    self.after_close += 1
                    continue
                if frame.opcode is Opcode.PING:
                    self.send(Frame(Opcode.PONG, frame.data))
                elif frame.opcode is Opcode.PONG:
                    self.pongs.append(frame.data)
                elif frame.opcode is Opcode.CLOSE:
                    self.close = close_payload(frame)
                    return None
                else:
                    got = self.assembler.add(frame)
                    if got is not None:
                        return got
            if self.close is not None:
                return None
            s = self.peer.stream(self.sid)
            if s.ended or s.reset is not None:
                raise PeerFailure("the WebSocket stream ended without a close frame (reset %s)" % s.reset)
            self.peer.run_until(
                lambda: self.frames or s.ended or s.reset is not None, deadline, "a frame"
            )


if __name__ == "__main__":
    main()
