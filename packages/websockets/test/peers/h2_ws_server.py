"""An independent RFC 8441 server: python-h2 for HTTP/2, python-websockets' codec for the frames.

    /usr/bin/python3 h2_ws_server.py [--cert CERT.pem --key KEY.pem]

Listens on 127.0.0.1 (a free port), h2c with prior knowledge, or TLS with ALPN h2 when --cert and
--key are given, and prints "listening on PORT". Every connection advertises
ENABLE_CONNECT_PROTOCOL=1 in its first SETTINGS. An extended CONNECT with `:protocol websocket` and
`sec-websocket-version: 13` gets a 200 with the first offered subprotocol; the WebSocket on it echoes
every message in one unmasked frame, answers pings, and answers a close with the same code and
reason, then ends the stream. The text message "please close" makes it close first, with 4001
"python says bye". A client frame that is not masked fails the WebSocket: close 1002, then
RST_STREAM(CANCEL). A GET gets 200 with a short text; anything else a 404.

When a WebSocket stream is over, one JSON line with "event": "session" says what it saw: the path,
the offered and chosen subprotocols, the messages (with how many frames each came in), whether
every client frame was masked, the close codes both ways, the client's END_STREAM and any reset.
"""

import argparse
import socket
import ssl
import threading
import time

from h2_ws_common import CANCEL, Assembler, FrameReader, H2Peer, close_payload, emit
from h2.settings import SettingCodes
from websockets.exceptions import ProtocolError
from websockets.frames import Close, Frame, Opcode

# A connection that says nothing for this long is dropped, so a forgotten client cannot pin a thread.
IDLE_SECONDS = 60.0


class ServerSession:
    """The WebSocket on one CONNECT stream."""

    def __init__(self, peer, s, path, offered, chosen):
        self.peer = peer
        self.sid = s.id
        self.reader = FrameReader(mask=True)
        self.assembler = Assembler()
        self.record = {
            "event": "session",
            "path": path,
            "offered": offered,
            "subprotocol": chosen,
            "messages": [],
            "pings": [],
            "masked": True,
            "error": None,
            "closeReceived": None,
            "closeSent": None,
            "framesAfterClose": 0,
            "clientEndStream": False,
            "reset": None,
        }
        self.done = False

    def send(self, frame, end=False):
        self.peer.send(self.sid, frame.serialize(mask=False), end=end)

    def send_close(self, code, reason, end=False):
        self.record["closeSent"] = [code, reason]
        payload = b"" if code == 1005 else Close(code, reason).serialize()
        self.send(Frame(Opcode.CLOSE, payload), end=end)

    def fail(self, code, reason, error):
        """Fails the WebSocket (RFC 6455 section 7.1.7): a close frame, then the stream is reset."""
        self.record["error"] = error
        if self.record["closeSent"] is None:
            self.send_close(code, reason)
        self.peer.conn.reset_stream(self.sid, CANCEL)
        self.peer.flush()
        self.finish()

    def take(self, data):
        if self.done:
            return
        try:
            frames = self.reader.feed(data)
        except ProtocolError as e:
            if "masking" in str(e):
                self.record["masked"] = False
                self.fail(1002, "client frames must be masked", str(e))
            else:
                self.fail(1002, "protocol error", str(e))
            return
        for frame in frames:
            if self.done:
                return
            self.frame(frame)

    def frame(self, frame):
        if self.record["closeReceived"] is not None:
            self.record["framesAfterClose"] += 1
            return
        if frame.opcode is Opcode.PING:
            self.record["pings"].append(frame.data.decode("utf-8", "replace"))
            self.send(Frame(Opcode.PONG, frame.data))
        elif frame.opcode is Opcode.PONG:
            pass
        elif frame.opcode is Opcode.CLOSE:
            try:
                self.record["closeReceived"] = close_payload(frame)
            except (ProtocolError, UnicodeDecodeError) as e:
                self.fail(1002, "bad close frame", str(e))
                return
            code, reason = self.record["closeReceived"]
            if self.record["closeSent"] is None:
                # Our answer, then END_STREAM: the WebSocket is over on our side.
                self.send_close(code, reason, end=True)
            else:
                self.peer.send(self.sid, b"", end=True)
        else:
            try:
                got = self.assembler.add(frame)
            except ProtocolError as e:
                self.fail(1002, "protocol error", str(e))
                return
            except UnicodeDecodeError as e:
                self.fail(1007, "invalid UTF-8", str(e))
                return
            if got is None:
                return
            kind, payload, count = got
            entry = {"type": kind, "frames": count, "length": len(payload)}
            if len(payload) <= 100:
                entry["text" if kind == "text" else "hex"] = payload if kind == "text" else payload.hex()
            self.record["messages"].append(entry)
            if kind == "text" and payload == "please close":
                self.send_close(4001, "python says bye")
            elif self.record["closeSent"] is None:
                opcode = Opcode.TEXT if kind == "text" else Opcode.BINARY
                self.send(Frame(opcode, payload.encode("utf-8") if kind == "text" else payload))

    def ended(self):
        self.record["clientEndStream"] = True
        self.finish()

    def was_reset(self, code):
        self.record["reset"] = code
        self.finish()

    def finish(self):
        if not self.done:
            self.done = True
            emit(self.record)


def on_request(peer, s):
    method = s.header(":method")
    path = s.header(":path")
    if method == "CONNECT" and s.header(":protocol") == "websocket":
        if s.header("sec-websocket-version") != "13":
            respond(peer, s, 400, "sec-websocket-version must be 13")
            return
        offered = [p.strip() for p in (s.header("sec-websocket-protocol") or "").split(",") if p.strip()]
        chosen = offered[0] if offered else None
        headers = [(":status", "200")]
        if chosen is not None:
            headers.append(("sec-websocket-protocol", chosen))
        peer.conn.send_headers(s.id, headers, end_stream=False)
        peer.flush()
        s.state = ServerSession(peer, s, path, offered, chosen)
    elif method == "GET":
        respond(peer, s, 200, "python h2 says hi on " + path)
    else:
        respond(peer, s, 404, "not here")


def respond(peer, s, status, text):
    body = text.encode("utf-8")
    peer.conn.send_headers(
        s.id,
        [(":status", str(status)), ("content-type", "text/plain"), ("content-length", str(len(body)))],
        end_stream=False,
    )
    peer.send(s.id, body, end=True)


def serve_connection(sock, context):
    try:
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True)
            if sock.selected_alpn_protocol() != "h2":
                return
        peer = H2Peer(
            sock,
            client_side=False,
            local_settings={
                SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
            },
        )
        peer.on_request = lambda s: on_request(peer, s)
        peer.on_data = lambda s, data: s.state.take(data) if s.state is not None else None
        peer.on_end = lambda s: s.state.ended() if s.state is not None else None
        peer.on_reset = lambda s: s.state.was_reset(s.reset) if s.state is not None else None
        peer.start()
        last = time.monotonic()
        while not peer.closed and peer.terminated is None:
            if peer.pump(1.0):
                last = time.monotonic()
            elif time.monotonic() - last > IDLE_SECONDS:
                break
        for s in peer.streams.values():
            if s.state is not None and not s.state.done:
                s.state.record["error"] = "the connection ended"
                s.state.finish()
    except (OSError, ssl.SSLError) as e:
        emit({"event": "connectionError", "error": str(e)})
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        context.set_alpn_protocols(["h2"])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print("listening on %d" % listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn, context), daemon=True).start()


if __name__ == "__main__":
    main()
