"""Making what an agent sends fit what is stored, without refusing it.

The agent keeps a refused signal queued and retries it forever (any 4xx), so a signal that is
too large is stored shortened rather than refused. Its rule SM-014 puts the full command line
into both `execution.args` and the process tree: a 60,000-byte command line makes a context of
123 KB. What goes is what matters least: the longest strings lose their tails first, each
marked with how many bytes it lost, while keys, the shape of the process tree and every small
value stay. Pure functions: no I/O, and the same input always gives the same output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

# Appended where a value was cut; says how much went, so nobody mistakes it for the original.
CUT_MARKER = "…[{} bytes cut]"
ITEMS_CUT_MARKER = "…[{} more items cut]"
# Strings this long (in UTF-8 bytes) or shorter are never cut: paths, ids, hashes, users.
SMALL_STRING_BYTES = 64
# A string is only worth cutting when it loses more than its marker adds.
MARKER_ROOM = 32
# The largest a marker gets (a cut of up to 99,999,999 bytes, far beyond any body).
_MARKER_MAX = len(CUT_MARKER.format(10**8 - 1).encode())
# When even the keys and small values of a context do not fit, it is kept as text, cut.
SUMMARY_NOTE = ("the context's keys and small values alone were over the limit; its JSON "
                "text is kept in `preview`, cut")
_SUMMARY_ROOM = 512  # the note and the summary's own keys

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def encode_context(context: dict[str, Any]) -> bytes:
    """The context as stored: compact JSON, integers kept exactly as sent.

    The agent's signals pass through a JSON round trip in its queue, which turns every number
    into a float64; Go writes one of 2**64 or more (an inode, a uint64 read back) as a plain
    integer such as 18446744073709552000, which is beyond 64 bits. Such integers are kept as
    the same digits.
    """
    try:
        return orjson.dumps(context)
    except TypeError:  # rare: an integer beyond 64 bits
        return orjson.dumps(_wide_integers_as_text(context))


def _wide_integers_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _wide_integers_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wide_integers_as_text(item) for item in value]
    if type(value) is int and not _INT64_MIN <= value <= _UINT64_MAX:
        return orjson.Fragment(str(value).encode())
    return value


def cut_text(text: str, max_chars: int) -> str:
    """`text` itself when it has at most `max_chars` characters, else its beginning followed by
    the marker, `max_chars` characters in all."""
    if len(text) <= max_chars:
        return text
    kept = max_chars - len(CUT_MARKER.format(len(text.encode())))
    head = text[:max(kept, 0)]
    return head + CUT_MARKER.format(len(text.encode()) - len(head.encode()))


def cut_list(items: list[str], max_items: int) -> list[str]:
    """The first items, the last one replaced by a marker naming how many more there were."""
    if len(items) <= max_items:
        return items
    kept = items[:max_items - 1]
    return [*kept, ITEMS_CUT_MARKER.format(len(items) - len(kept))]


def shorten_context(context: dict[str, Any], limit: int) -> bytes:
    """The context as stored JSON of at most `limit` bytes (`limit` must be over 1,000).

    1. The longest strings are cut, all to the same length, as little as fits: each keeps its
       beginning and gains a marker. Strings of up to SMALL_STRING_BYTES are never cut.
    2. If that is not enough, strings are cut to SMALL_STRING_BYTES and the longest lists keep
       only their first items, all the same number, plus a marker item.
    3. If even that is too much (a context made mostly of keys), the context becomes
       `{"santamon_shortened": SUMMARY_NOTE, "preview": <the beginning of its JSON text>}`.
    """
    encoded = encode_context(context)
    if len(encoded) <= limit:
        return encoded
    strings = sorted(_string_sizes(context), reverse=True)
    cap = _string_cap(strings, len(encoded), limit)
    while cap is not None and cap >= SMALL_STRING_BYTES:
        fitted = encode_context(_rebuilt(context, _cut_string(cap), None))
        if len(fitted) <= limit:
            return fitted
        # Escapes made the estimate short: take the excess off every cut string, and more.
        cut = sum(1 for size, _ in strings if size > cap + MARKER_ROOM) or 1
        cap -= max(1, math.ceil((len(fitted) - limit) / cut))
    return _with_lists_cut(context, limit) or _summary(encoded, limit)


def _string_sizes(value: Any) -> list[tuple[int, int]]:
    """(UTF-8 bytes, bytes as JSON) of every string value that may be longer than
    SMALL_STRING_BYTES; keys are not values."""
    sizes: list[tuple[int, int]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > SMALL_STRING_BYTES // 4:  # possibly over SMALL_STRING_BYTES
                sizes.append((len(item.encode()), len(orjson.dumps(item))))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return sizes


def _string_cap(strings: list[tuple[int, int]], total: int, limit: int) -> int | None:
    """The largest length (UTF-8 bytes) that the longest strings can be cut to for the whole
    to fit, estimated from each string's bytes as JSON per UTF-8 byte (escapes take more);
    None if no cap of at least SMALL_STRING_BYTES would do.

    Cutting the k longest to a cap c gives total - sum(json_i) + sum(ratio_i * c + 2 + marker)
    over those k; for each k the largest c follows, and it is right when the (k+1)-th longest
    string needs no cut at c.
    """
    removed = ratios = 0.0
    for k, (size, as_json) in enumerate(strings, start=1):
        removed += as_json - 2 - _MARKER_MAX  # each keeps its quotes and gains a marker
        ratios += (as_json - 2) / size
        cap = math.floor((limit - total + removed) / ratios)
        following = strings[k][0] if k < len(strings) else 0
        if cap >= following - MARKER_ROOM:
            # At least the k-th must really be cut (a cap just under the total cuts nothing).
            cap = min(cap, size - MARKER_ROOM - 1)
            return cap if cap >= SMALL_STRING_BYTES else None
    return None


def _cut_string(cap: int) -> Callable[[str], str]:
    def cut(text: str) -> str:
        if len(text) * 4 <= cap + MARKER_ROOM:  # fits, however wide its characters
            return text
        raw = text.encode()
        if len(raw) <= cap + MARKER_ROOM:
            return text
        head = raw[:cap].decode(errors="ignore")  # never half a character
        return head + CUT_MARKER.format(len(raw) - len(head.encode()))
    return cut


def _rebuilt(value: Any, cut: Callable[[str], str], max_items: int | None) -> Any:
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, dict):
        return {key: _rebuilt(item, cut, max_items) for key, item in value.items()}
    if isinstance(value, list):
        if max_items is not None and len(value) > max_items:
            kept = [_rebuilt(item, cut, max_items) for item in value[:max_items]]
            return [*kept, ITEMS_CUT_MARKER.format(len(value) - max_items)]
        return [_rebuilt(item, cut, max_items) for item in value]
    return value


def _with_lists_cut(context: dict[str, Any], limit: int) -> bytes | None:
    """Strings at their smallest, then the most list items each list may keep (found by
    bisection, since fewer items never make it larger); None if even none would do."""
    cut = _cut_string(SMALL_STRING_BYTES)
    longest = _longest_list(context)

    def encoded(max_items: int | None) -> bytes:
        return encode_context(_rebuilt(context, cut, max_items))

    best = encoded(None)
    if len(best) <= limit:
        return best
    fits, too_many = None, longest
    low = 0
    while low < too_many:
        middle = (low + too_many) // 2
        candidate = encoded(middle)
        if len(candidate) <= limit:
            fits, low = candidate, middle + 1
        else:
            too_many = middle
    return fits


def _longest_list(value: Any) -> int:
    longest = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            longest = max(longest, len(item))
            stack.extend(item)
    return longest


def _summary(encoded: bytes, limit: int) -> bytes:
    # Quoting the JSON text as a string at most doubles it (every character a quote).
    head = encoded[:(limit - _SUMMARY_ROOM) // 2].decode(errors="ignore")
    return orjson.dumps({"santamon_shortened": SUMMARY_NOTE,
                         "preview": head + CUT_MARKER.format(len(encoded) - len(head.encode()))})
