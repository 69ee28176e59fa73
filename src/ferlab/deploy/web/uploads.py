"""Reading an uploaded image from an HTTP request within a byte limit.

The limit holds for what the client declares (``Content-Length``) and for the bytes actually streamed,
whatever it declared; a multipart form (field ``file``) and a raw ``image/*`` body are both accepted.
Written here, not left to Starlette, because Starlette reads a whole body or form before any limit applies.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from ferlab.deploy.media import ImageError

MULTIPART_SLACK = 64 * 1024  # multipart headers and boundaries around the file, beyond max_upload_bytes


class _BodyTooLarge(Exception):
    pass


async def read_upload(request: Request, max_bytes: int) -> bytes:
    """The image bytes of an upload; :class:`ImageError` 400 (no or empty file, bad form) or 413 (too large)."""
    body_limit = max_bytes + MULTIPART_SLACK
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise ImageError(413, f"upload is {int(declared):,} bytes, over the limit of {max_bytes:,}")
    received = 0

    async def limited_receive():  # the bytes actually streamed, whatever Content-Length said
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > body_limit:
                raise _BodyTooLarge
        return message

    body = Request(request.scope, limited_receive)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "multipart/form-data":
            data = await _form_file(body, max_bytes)
        else:
            data = await body.body()
    except _BodyTooLarge:
        raise ImageError(413, f"upload is over the limit of {max_bytes:,} bytes") from None
    except StarletteHTTPException as exc:  # a malformed multipart body
        raise ImageError(exc.status_code, f"bad multipart body: {exc.detail}") from None
    if len(data) > max_bytes:
        raise ImageError(413, f"upload is over the limit of {max_bytes:,} bytes")
    if not data:
        raise ImageError(400, "empty upload: send an image")
    return data


async def _form_file(body: Request, max_bytes: int) -> bytes:
    form = await body.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise ImageError(400, "no file in the form: send the image as the multipart field 'file'")
        return await upload.read(max_bytes + 1)
    finally:
        await form.close()
