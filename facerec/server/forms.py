"""Multipart form fields must be valid text: an undecodable `name` is refused, not guessed at.

Starlette decodes a form field with the request's charset (UTF-8 unless the
client says otherwise) and, when the bytes are not valid in it, silently
falls back to Latin-1: b"Zo\\xeb" arrives as "Zoë", b"\\xff\\xfe" as "ÿþ", and
such mojibake was enrolled as a person's name. From the decoded text alone a
fallback cannot be told from a real "Zoë", so the check has to see the bytes:
`StrictFormRoute` (FastAPI's documented custom-route hook) hands each request
a `StrictFormRequest`, whose multipart parser decodes every plain field
strictly and answers 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import aclosing
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser

from facerec.errors import echo


class StrictMultiPartParser(MultiPartParser):
    """Starlette's multipart parser, but a field that is not valid text is an error."""

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            charset = self._charset or "utf-8"
            try:
                bytes(part.data).decode(charset)
            except (UnicodeDecodeError, LookupError):
                raise MultiPartException(
                    f"form field {echo(part.field_name)} is not valid {charset} text"
                ) from None
        super().on_part_end()


class StrictFormRequest(Request):
    """A request whose multipart body is parsed by `StrictMultiPartParser`."""

    async def _get_form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        if self._form is None:
            content_type, _ = parse_options_header(self.headers.get("Content-Type"))
            if content_type == b"multipart/form-data":
                try:
                    async with aclosing(self.stream()) as stream:
                        parser = StrictMultiPartParser(
                            self.headers,
                            stream,
                            max_files=max_files,
                            max_fields=max_fields,
                            max_part_size=max_part_size,
                        )
                        self._form = await parser.parse()
                except MultiPartException as exc:
                    raise HTTPException(status_code=400, detail=exc.message) from None
        return await super()._get_form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )


class StrictFormRoute(APIRoute):
    """Routes whose handlers see `StrictFormRequest`s."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictFormRequest(request.scope, request.receive))

        return strict
