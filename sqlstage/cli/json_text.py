"""A `--json` document's text: exactly what `json.dumps(value, indent=2, ensure_ascii=False,
default=str)` writes, at C speed.

With `indent`, the standard library encodes in Python, one generator step per value: `status
--json` over 10,000 migrations (8 MB, 700,000 values) spent ~0.13 s there. Its C encoder
takes no indent, but it takes any item separator, and within one container every separator
is the same `",\\n"` plus that depth's indent. So a container of scalars is one C call, and
so is a list of records (dicts of scalars: each environment's `applied`), whose two depths
are told apart afterwards (`_records`). Anything else is walked here, container by
container, down to such pieces.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

_STEP = "  "
#: values the C encoder writes the same way at any depth; exact types, so that a subclass
#: (an enum, a Path) takes the general path, which leaves its spelling to `json`
_SCALARS = frozenset({str, int, float, bool, type(None)})
_ENCODERS: dict[str, json.JSONEncoder] = {}


def indented(value: Any) -> str:
    """`value` as JSON, indented by two spaces, non-ASCII kept, anything else `str()`-ed.

    >>> print(indented({"a": [1, "é"], "b": {}}))
    {
      "a": [
        1,
        "é"
      ],
      "b": {}
    }
    """
    parts: list[str] = []
    _write(value, "", parts)
    return "".join(parts)


def _write(value: Any, pad: str, parts: list[str]) -> None:
    if isinstance(value, dict):
        _write_dict(value, pad, parts)
    elif isinstance(value, list | tuple):
        _write_list(value, pad, parts)
    else:
        parts.append(_encoder(",").encode(value))


def _write_dict(value: dict[Any, Any], pad: str, parts: list[str]) -> None:
    inner = pad + _STEP
    if not value:
        parts.append("{}")
    elif set(map(type, value.values())) <= _SCALARS:
        parts.append(_opened("{", _encoder(",\n" + inner).encode(value), inner, pad))
    else:
        separator = "{\n"
        for key, item in value.items():
            parts.append(f"{separator}{inner}{_key(key)}: ")
            separator = ",\n"
            _write(item, inner, parts)
        parts.append(f"\n{pad}}}")


def _write_list(value: list[Any] | tuple[Any, ...], pad: str, parts: list[str]) -> None:
    inner = pad + _STEP
    if not value:
        parts.append("[]")
    elif set(map(type, value)) <= _SCALARS:
        parts.append(_opened("[", _encoder(",\n" + inner).encode(value), inner, pad))
    elif _records(value):
        parts.append(_record_list(value, inner, pad))
    else:
        separator = "[\n"
        for item in value:
            parts.append(separator + inner)
            separator = ",\n"
            _write(item, inner, parts)
        parts.append(f"\n{pad}]")


def _records(value: list[Any] | tuple[Any, ...]) -> bool:
    """Non-empty plain dicts of scalars only."""
    return (
        set(map(type, value)) == {dict}
        and all(value)
        and set(map(type, chain.from_iterable(map(dict.values, value)))) <= _SCALARS
    )


def _record_list(value: list[Any] | tuple[Any, ...], inner: str, pad: str) -> str:
    """A list of records in one C call, every separator at the records' fields' depth; a
    separator between two records is the only one after a `}` and before a `{` (a field's
    value is a scalar, and a real line break is never inside a JSON string), so it is found
    and re-indented by one replace."""
    deeper = inner + _STEP
    text = _encoder(",\n" + deeper).encode(value)
    text = text.replace(f"}},\n{deeper}{{", f"\n{inner}}},\n{inner}{{\n{deeper}")
    # `[{` ... `}]`: the outer list's and the first and last record's brackets
    return f"[\n{inner}{{\n{deeper}{text[2:-2]}\n{inner}}}\n{pad}]"


def _opened(bracket: str, text: str, inner: str, pad: str) -> str:
    """A compact container whose separators already carry `inner`, its brackets on lines of
    their own."""
    return f"{bracket}\n{inner}{text[1:-1]}\n{pad}{text[-1]}"


def _key(key: Any) -> str:
    """A dict key as `json` writes it (a number or None spelled as a string)."""
    return _encoder(",").encode({key: 0})[1:-4]


def _encoder(item_separator: str) -> json.JSONEncoder:
    encoder = _ENCODERS.get(item_separator)
    if encoder is None:
        encoder = json.JSONEncoder(
            ensure_ascii=False, default=str, separators=(item_separator, ": ")
        )
        _ENCODERS[item_separator] = encoder
    return encoder
