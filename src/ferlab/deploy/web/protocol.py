"""The camera WebSocket (``/ws``): one :class:`FrameStream` per client.

The client sends binary JPEG/PNG frames, each optionally preceded by a text message ``{"id": ...}`` (a
string or number, echoed back); a frame without one gets the connection's frame count (1, 2, ...). Every
frame is answered with ``{"id", "width", "height", "faces", "timings_ms"}``, or ``{"id", "error",
"status"}`` for a bad frame (not an image, too many bytes or pixels); the connection stays open. A frame
that arrives while the previous one still waits (the client did not wait for its answer) replaces it, and
the replaced one is answered ``{"id", "skipped": true}``: the server never builds a queue. Each connection
keeps its own state, so clients never see each other's answers, and its own detector (made with its first
frame), which follows the client's faces from frame to frame as ``ferlab live``'s does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from ferlab.deploy.media import ImageError
from ferlab.deploy.web.engine import Engine

log = logging.getLogger("ferlab.web")


class FrameStream:
    """One WebSocket client: its own frame ids, pending frame and answers (nothing shared between clients)."""

    def __init__(self, websocket: WebSocket, engine: Engine, max_bytes: int):
        self.websocket, self.engine, self.max_bytes = websocket, engine, max_bytes
        self.pending: tuple | None = None  # (id, bytes) of the frame waiting for the processor
        self.ready = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.frames = 0
        self.closed = False
        self.pipeline = None  # this client's camera pipeline, made with its first frame

    async def serve(self) -> None:
        processor = asyncio.create_task(self._process())
        try:
            await self._receive()
        except WebSocketDisconnect:
            pass
        finally:
            self.closed = True
            processor.cancel()
            with suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await processor

    async def _send(self, answer: dict) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                await self.websocket.send_text(json.dumps(answer))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def _receive(self) -> None:
        next_id = None
        while not self.closed:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                try:
                    meta = json.loads(message["text"])
                except ValueError:
                    meta = None
                if not isinstance(meta, dict):
                    await self._send({"id": None, "error": 'a text message must be a JSON object such as {"id": 7}, '
                                                           "sent before the binary frame it describes", "status": 400})
                    continue
                frame_id = meta.get("id")
                if not (frame_id is None or isinstance(frame_id, (int, float, str))) or len(str(frame_id)) > 200:
                    await self._send({"id": None, "error": "a frame id must be a number or a string of at most "
                                                           "200 characters", "status": 400})
                    continue
                next_id = frame_id
                continue
            data = message.get("bytes") or b""
            self.frames += 1
            frame_id = next_id if next_id is not None else self.frames
            next_id = None
            if len(data) > self.max_bytes:
                await self._send({"id": frame_id, "error": f"frame is {len(data):,} bytes, over the limit of "
                                                           f"{self.max_bytes:,}", "status": 413})
                continue
            if not data:
                await self._send({"id": frame_id, "error": "empty frame: send a JPEG or PNG image", "status": 400})
                continue
            if self.pending is not None:  # the client did not wait: the newest frame wins
                await self._send({"id": self.pending[0], "skipped": True})
            self.pending = (frame_id, data)
            self.ready.set()

    async def _process(self) -> None:
        while not self.closed:
            await self.ready.wait()
            self.ready.clear()
            if self.pending is None:
                continue
            frame_id, data = self.pending
            self.pending = None
            try:
                if self.pipeline is None:
                    self.pipeline = await self.engine.camera_pipeline()
                answer = {"id": frame_id, **await self.engine.run(data, pipeline=self.pipeline)}
            except ImageError as exc:
                answer = {"id": frame_id, "error": str(exc), "status": exc.status}
            except Exception as exc:  # a bug must not end the connection silently
                log.exception("frame %r failed", frame_id)
                answer = {"id": frame_id, "error": f"internal error: {type(exc).__name__}: {exc}", "status": 500}
            await self._send(answer)
