"""The mirrored HPACK decoder of one direction of an h2c connection: hpack's Decoder, plus a
cache of decoded blocks, because decoding in pure Python is most of what observing a stream
costs, and most blocks repeat byte for byte:

- a client repeating its requests (the same method, path, authority, content-type) sends
  blocks of indexed fields only, identical while the table is unchanged: such a block is kept
  until the table changes;
- many servers (nginx among them) send every response's head as literals with incremental
  indexing and static names: the same bytes each time, decoded the same whatever the dynamic
  table holds, each inserting the same entries. Such a block is kept with the entries it
  inserts; a repeat inserts them again (hpack's table does the evicting) and decodes nothing.

Which kind a block is comes from a scan of its representations (RFC 7541 section 6): their
types and indexes, never their strings. Only blocks up to CACHED_BLOCK_BYTES are kept,
CACHED_BLOCKS of each kind: bounded memory per direction (the values are the table's own bytes
or hpack's, not copies per hit).
"""

from __future__ import annotations

from typing import TypeVar, cast

from hpack import Decoder
from hpack.hpack import decode_integer
from hpack.table import HeaderTable

CACHED_BLOCK_BYTES = 512
CACHED_BLOCKS = 32
_STATIC = HeaderTable.STATIC_TABLE_LENGTH  # indexes above it read the dynamic table

Headers = list[tuple[bytes, bytes]]
_Kept = TypeVar("_Kept")


def block_shape(block: bytes) -> tuple[bool, list[int]] | None:
    """Whether decoding `block` reads the dynamic table, and the positions (in its header
    list) of the fields it inserts; None when it resizes the table (never kept)."""
    view = memoryview(block)
    pos, end, field = 0, len(block), 0
    reads = False
    inserts: list[int] = []
    while pos < end:
        first = block[pos]
        if first & 0x80:  # indexed field
            index, used = decode_integer(view[pos:], 7)
            reads = reads or index > _STATIC
            pos += used
            field += 1
            continue
        if first & 0x40:  # literal with incremental indexing
            inserts.append(field)
            prefix = 6
        elif first & 0x20:  # dynamic table size update
            return None
        else:  # literal without indexing, or never indexed
            prefix = 4
        index, used = decode_integer(view[pos:], prefix)
        reads = reads or index > _STATIC
        pos += used
        for _ in range(1 if index else 2):  # the value, and the name when not indexed
            length, used = decode_integer(view[pos:], 7)
            pos += used + length
        field += 1
    return reads, inserts


class MirroredDecoder:
    """hpack's Decoder with the cache described above."""

    def __init__(self, max_header_list_size: int) -> None:
        self.decoder = Decoder(max_header_list_size=max_header_list_size)
        self._table = self.decoder.header_table
        # Blocks that read the dynamic table and do not change it: valid until it changes.
        self._unchanged: dict[bytes, Headers] = {}
        # Blocks that never read it: their headers and the entries they insert, for good.
        self._independent: dict[bytes, tuple[Headers, Headers]] = {}

    def decode(self, block: bytes) -> Headers:
        headers = self._unchanged.get(block)
        if headers is not None:
            return headers
        replay = self._independent.get(block)
        if replay is not None:
            headers, inserted = replay
            if inserted:
                add = self._table.add
                for name, value in inserted:
                    add(name, value)
                self._unchanged.clear()
            return headers
        # raw=True: hpack's list of (name, value) bytes pairs.
        headers = cast(Headers, self.decoder.decode(block, raw=True))
        shape = block_shape(block) if len(block) <= CACHED_BLOCK_BYTES else None
        changed = shape is None or bool(shape[1])
        if changed and self._unchanged:
            self._unchanged.clear()
        if shape is not None:
            reads, inserts = shape
            if not reads:
                _keep(self._independent, block, (headers, [headers[i] for i in inserts]))
            elif not inserts:
                _keep(self._unchanged, block, headers)
        return headers

    def allow_table_size(self, size: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE, acknowledged."""
        self.decoder.max_allowed_table_size = size
        # A block decoded under the old limit may break the new one: decode afresh.
        self._unchanged.clear()
        self._independent.clear()


def _keep(cache: dict[bytes, _Kept], block: bytes, value: _Kept) -> None:
    if len(cache) >= CACHED_BLOCKS:
        cache.clear()
    cache[block] = value
