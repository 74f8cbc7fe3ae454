"""Shared by the RFC 8441 peer scripts (h2_ws_client.py, h2_ws_server.py).

An HTTP/2 connection driven by python-h2 on a blocking socket, with per-stream sending that waits
for flow-control credit, and WebSocket framing with python-websockets' codec (websockets.frames).
Nothing here comes from hyperwire: these peers exist to check hyperwire against an independent
implementation, so they must not share its code.

Both need Debian's python3-h2 and python3-websockets, which load in /usr/bin/python3.
"""

import json
import select
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from websockets.exceptions import ProtocolError
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

# RST_STREAM code RFC 8441 section 5.1 maps an abrupt WebSocket close to.
CANCEL = 0x8

SETTING_NAMES = {
    0x1: "HEADER_TABLE_SIZE",
    0x2: "ENABLE_PUSH",
    0x3: "MAX_CONCURRENT_STREAMS",
    0x4: "INITIAL_WINDOW_SIZE",
    0x5: "MAX_FRAME_SIZE",
    0x6: "MAX_HEADER_LIST_SIZE",
    0x8: "ENABLE_CONNECT_PROTOCOL",
}

_print_lock = threading.Lock()


def emit(record):
    """Prints one JSON line on stdout (whole lines, even from several threads)."""
    line = json.dumps(record, sort_keys=True)
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class PeerFailure(Exception):
    """An expectation the peer checks did not hold; the message says what was seen."""


class FrameReader:
    """Parses WebSocket frames out of the bytes of a stream with websockets' Frame.parse.

    mask=True is the server's reader: every frame must be masked, and websockets raises
    ProtocolError("incorrect masking") otherwise; mask=False is the client's (frames must not be).
    """

    def __init__(self, mask, max_size=16 * 1024 * 1024):
        self.reader = StreamReader()
        self.mask = mask
        self.max_size = max_size
        self.parser = self._parser()

    def _parser(self):
        return Frame.parse(self.reader.read_exact, mask=self.mask, max_size=self.max_size)

    def feed(self, data):
        """Takes bytes; returns the frames they complete (raises ProtocolError on a bad frame)."""
        self.reader.feed_data(data)
        frames = []
        while True:
            try:
                # The parser yields while it waits for more bytes.
                next(self.parser)
                return frames
            except StopIteration as done:
                frames.append(done.value)
                self.parser = self._parser()


class Assembler:
    """Joins data frames into messages (RFC 6455 section 5.4)."""

    def __init__(self):
        self.opcode = None
        self.parts = []

    def add(self, frame):
        """Returns (kind, payload, frame count) when `frame` completes a message, else None."""
        if frame.opcode is Opcode.CONT:
            if self.opcode is None:
                raise ProtocolError("continuation frame without a message to continue")
        else:
            if self.opcode is not None:
                raise ProtocolError("new data frame while a fragmented message is unfinished")
            self.opcode = frame.opcode
        self.parts.append(frame.data)
        if not frame.fin:
            return None
        payload = b"".join(self.parts)
        count = len(self.parts)
        opcode = self.opcode
        self.opcode = None
        self.parts = []
        if opcode is Opcode.TEXT:
            return ("text", payload.decode("utf-8"), count)
        return ("binary", payload, count)


def close_payload(frame):
    """[code, reason] of a close frame (1005 for an empty one)."""
    close = Close.parse(frame.data)
    return [close.code, close.reason]


class Stream:
    """What one HTTP/2 stream has seen, and the bytes waiting for flow-control credit."""

    def __init__(self, stream_id):
        self.id = stream_id
        self.headers = None
        self.body = bytearray()
        self.ended = False
        self.reset = None
        self.out = bytearray()
        self.end_after = False
        self.end_sent = False
        self.state = None

    def header(self, name):
        for key, value in self.headers or []:
            if key == name:
                return value
        return None


class H2Peer:
    """One HTTP/2 connection on a blocking socket. Callbacks (on_request, on_response, on_data,
    on_end, on_reset) are set by the script; each gets the Stream (and the data for on_data)."""

    def __init__(self, sock, client_side, local_settings=None):
        self.sock = sock
        config = h2.config.H2Configuration(client_side=client_side, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        if local_settings is not None:
            # The first SETTINGS frame carries what local_settings holds (initiate_connection).
            self.conn.local_settings = h2.settings.Settings(
                client=client_side, initial_values=local_settings
            )
        self.streams = {}
        self.settings_frames = []
        self.terminated = None
        self.closed = False
        noop = lambda *args: None
        self.on_request = noop
        self.on_response = noop
        self.on_data = noop
        self.on_end = noop
        self.on_reset = noop

    def start(self):
        self.conn.initiate_connection()
        self.flush()

    def stream(self, stream_id):
        s = self.streams.get(stream_id)
        if s is None:
            s = self.streams[stream_id] = Stream(stream_id)
        return s

    def send(self, stream_id, data, end=False):
        """Queues DATA on a stream (sent as flow control allows); end=True ends the stream after."""
        s = self.stream(stream_id)
        s.out += data
        s.end_after = s.end_after or end
        self.flush()

    def flush(self):
        for s in list(self.streams.values()):
            if s.reset is not None:
                s.out.clear()
                continue
            while s.out:
                try:
                    window = self.conn.local_flow_control_window(s.id)
                except h2.exceptions.StreamClosedError:
                    s.out.clear()
                    break
                size = min(window, self.conn.max_outbound_frame_size, len(s.out))
                if size <= 0:
                    break
                self.conn.send_data(s.id, bytes(s.out[:size]))
                del s.out[:size]
            if not s.out and s.end_after and not s.end_sent and s.reset is None:
                s.end_sent = True
                self.conn.end_stream(s.id)
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.sock.sendall(data)

    def pump(self, timeout):
        """Waits up to `timeout` seconds for bytes, feeds them to h2, handles the events.

        Returns True when bytes arrived."""
        # TLS may hold decrypted bytes select() cannot see.
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
        if not pending:
            readable, _, _ = select.select([self.sock], [], [], timeout)
            if not readable:
                return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self.handle(event)
        self.flush()
        return True

    def handle(self, event):
        if isinstance(event, h2.events.RemoteSettingsChanged):
            changed = event.changed_settings.items()
            self.settings_frames.append(
                {SETTING_NAMES.get(int(k), str(int(k))): v.new_value for k, v in changed}
            )
        elif isinstance(event, h2.events.RequestReceived):
            s = self.stream(event.stream_id)
            s.headers = list(event.headers)
            self.on_request(s)
        elif isinstance(event, h2.events.ResponseReceived):
            s = self.stream(event.stream_id)
            s.headers = list(event.headers)
            self.on_response(s)
        elif isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.on_data(self.stream(event.stream_id), event.data)
        elif isinstance(event, h2.events.StreamEnded):
            s = self.stream(event.stream_id)
            s.ended = True
            self.on_end(s)
        elif isinstance(event, h2.events.StreamReset):
            s = self.stream(event.stream_id)
            s.reset = int(event.error_code)
            self.on_reset(s)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = int(event.error_code)

    def run_until(self, predicate, deadline, what):
        """Pumps until predicate() holds; PeerFailure if the deadline passes or the peer leaves."""
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerFailure("timed out waiting for " + what)
            if self.closed or self.terminated is not None:
                raise PeerFailure(
                    "the connection ended (GOAWAY %s) while waiting for %s" % (self.terminated, what)
                )
            self.pump(min(remaining, 1.0))
