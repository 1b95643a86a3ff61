"""Reading a body of unknown length without holding more than a limit of it in memory,
and JSON from outside the app as JSON (RFC 8259) allows, in numbers Python can compare."""

import json
import math
from collections.abc import AsyncIterable
from typing import Any


async def read_at_most(chunks: AsyncIterable[bytes], limit: int) -> bytes | None:
    """The body the chunks make up, or None as soon as it grows past `limit` bytes."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def parse_json(text: str | bytes) -> Any:
    """`json.loads`, refusing (ValueError) what is not JSON (`NaN`, `Infinity`), numbers
    too large for a float (`1e400`, or an integer of 400 digits: each would pass or
    break the checks of time claims), and nesting deeper than Python can parse."""
    try:
        value = json.loads(text, parse_constant=_not_json, parse_float=_finite, parse_int=_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 300:  # past what a float holds: time checks would overflow
        raise ValueError(f"{text[:20]}... is too large")
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large")
    return value
