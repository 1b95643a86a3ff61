"""Reading a body of unknown length without holding more than a limit of it in memory."""

from collections.abc import AsyncIterable


async def read_at_most(chunks: AsyncIterable[bytes], limit: int) -> bytes | None:
    """The body the chunks make up, or None as soon as it grows past `limit` bytes."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
