"""Reading form bodies: their fields by name, in the encoding the page posted them in.

A browser posts a form in its page's encoding and never names it in the Content-Type. A urlencoded or
multipart body is read in:
- the `charset` its Content-Type declares (a script's post may declare one);
- else the encoding its `_charset_` field names (a browser fills a hidden input of that name with it);
- else UTF-8, or, when the body is not UTF-8, windows-1252: WHATWG's encoding for legacy pages, and what a
  page in Latin-1 or windows-1252 posts. The post then carries a warning, so its page can be fixed.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser

from app.api.bodies import json_object
from app.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError, too_large

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
CHARSET_FIELD = "_charset_"
MAX_BOUNDARY_CHARS = 70  # RFC 2046's longest boundary: a longer one is shown cut
LEGACY_CHARSET = "cp1252"  # windows-1252
NOT_UTF8_WARNING = "form body: not UTF-8, read as windows-1252"
# Charsets a web page may post a form in (the WHATWG encodings that are plain byte-to-text codecs).
_FORM_CHARSETS = frozenset(
    ["utf-8", "ascii", "cp866", "cp874", "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic"]
    + ["shift_jis", "euc_jp", "iso2022_jp", "gbk", "gb2312", "gb18030", "big5", "euc_kr"]
    + [f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)]
    + [f"cp{n}" for n in range(1250, 1259)]
)
# WHATWG labels of those encodings that Python's codec registry does not know (a browser writes the
# encoding's WHATWG name into `_charset_`).
_WHATWG_ONLY_LABELS = {
    "windows-874": "cp874",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-roman": "mac-roman",
    "iso-8859-8-i": "iso8859-8",
}
# Latin-1 maps each byte to one character and back: fields are split out as bytes, decoded once the body's
# encoding is known.
_BYTES_AS_TEXT = "latin-1"
# A byte order mark some senders (.NET's UTF8 encoding, PowerShell) put before a body: not part of its first name.
_BOM = "\ufeff"

RawPairs = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class FormBody:
    """A post's fields by name, and warnings about how its body had to be read."""

    fields: dict[str, Any]
    warnings: tuple[str, ...] = ()


def read_form_body(request: Request) -> FormBody:
    """The fields of a urlencoded, multipart (file parts ignored) or JSON body.

    A name given more than once (a page with a desktop and a mobile copy of an input), or a JSON list holding
    a blank copy, keeps its filled values: one gives that value, several a list. Raises
    `UnsupportedMediaTypeError` for other media types (text/plain forms are ambiguous) and for a charset that
    is no web text encoding, `BadRequestError` for JSON that is not an object or a multipart body that cannot
    be read, `PayloadTooLargeError` past the body limit.
    """
    try:
        if request.mimetype == URLENCODED:
            utf8 = _utf8_urlencoded_pairs(request)
            if utf8 is not None:
                return FormBody(_by_name(utf8))
            raw = _urlencoded_pairs(request)
        elif request.mimetype == MULTIPART:
            raw = _multipart_pairs(request)
        elif request.is_json:
            return FormBody(_without_blank_copies(json_object(request)))
        else:
            expected = "expected application/x-www-form-urlencoded, multipart/form-data or application/json"
            raise UnsupportedMediaTypeError(expected, {"Content-Type": [expected]})
    except RequestEntityTooLarge as exc:
        raise too_large(request) from exc
    charset, warnings = _body_charset(raw, request.mimetype_params.get("charset"))
    pairs = ((name.decode(charset, "replace"), value.decode(charset, "replace")) for name, value in raw)
    return FormBody(_by_name(pairs), warnings)


def _utf8_urlencoded_pairs(request: Request) -> list[tuple[str, str]] | None:
    """A urlencoded body's pairs in one pass, when it declares no charset and is UTF-8 throughout (escapes
    included) with no `_charset_` naming another: what nearly every page posts. None for any other body."""
    if "charset" in request.mimetype_params:
        return None
    try:
        text = request.get_data(cache=True).decode("utf-8").removeprefix(_BOM)
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=request.max_form_parts)
    except (UnicodeDecodeError, ValueError):  # not UTF-8, or too many fields: read the long way, which says so
        return None
    named = next((value.strip() for name, value in pairs if name == CHARSET_FIELD and value.strip()), None)
    if named is not None and _form_charset(named, CHARSET_FIELD) != "utf-8":
        return None
    return pairs


def _urlencoded_pairs(request: Request) -> RawPairs:
    """A urlencoded body's names and values, as bytes."""
    text = request.get_data(cache=True).removeprefix(_BOM.encode()).decode(_BYTES_AS_TEXT)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding=_BYTES_AS_TEXT, max_num_fields=request.max_form_parts)
    except ValueError:
        expected = f"expected at most {request.max_form_parts} form fields"
        raise PayloadTooLargeError(
            f"the body may hold at most {request.max_form_parts} form fields", {"body": [expected]}
        ) from None
    return [(name.encode(_BYTES_AS_TEXT), value.encode(_BYTES_AS_TEXT)) for name, value in pairs]


class _BytesKeepingParser(MultiPartParser):
    """werkzeug's multipart parser, handing each field's value over byte for byte (werkzeug would decode it
    as UTF-8, turning a windows-1252 page's letters into U+FFFD before the body's encoding is known)."""

    def get_part_charset(self, headers: Headers) -> str:
        return _BYTES_AS_TEXT


def _file_in_memory(*args: Any, **kwargs: Any) -> IO[bytes]:
    """Where a file part goes: nowhere that needs closing (its bytes are ignored, and fit the body limit)."""
    return io.BytesIO()


def _multipart_pairs(request: Request) -> RawPairs:
    """A multipart body's field names and values, as bytes; an empty body has none. A part without a name (a
    hand-made body) has nowhere to go: it is left out. Raises `BadRequestError` for a body that cannot be read
    as multipart (werkzeug would read it as no fields, and the post be refused for a missing phone it holds)."""
    data = request.get_data(cache=True)
    if not data:
        return []
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        expected = "expected multipart/form-data with its boundary, e.g. multipart/form-data; boundary=x"
        raise BadRequestError("the multipart body has no boundary", {"Content-Type": [expected]})
    parser = _BytesKeepingParser(
        stream_factory=_file_in_memory,
        max_form_memory_size=request.max_form_memory_size,
        max_form_parts=request.max_form_parts,
    )
    name_codec = "utf-8"  # werkzeug reads part headers, where the names are, as UTF-8
    try:
        try:
            fields, _files = parser.parse(io.BytesIO(data), boundary.encode("ascii"), request.content_length)
        except UnicodeDecodeError:  # a legacy page's name ("prénom" in windows-1252): its bytes kept as text
            legible = _part_headers_as_utf8(data, boundary.encode("ascii"))
            fields, _files = parser.parse(io.BytesIO(legible), boundary.encode("ascii"), request.content_length)
            name_codec = _BYTES_AS_TEXT
    except ValueError:  # broken framing (a body cut off, or no multipart), a boundary that is not ASCII
        shown = boundary[:MAX_BOUNDARY_CHARS]
        expected = f"expected multipart/form-data parts, each opened by --{shown}, the last closed by --{shown}--"
        raise BadRequestError("the multipart body cannot be read", {"body": [expected]}) from None
    named = ((name, values) for name, values in fields.lists() if name)
    return [(name.encode(name_codec), value.encode(_BYTES_AS_TEXT)) for name, values in named for value in values]


def _part_headers_as_utf8(data: bytes, boundary: bytes) -> bytes:
    """A multipart body whose part headers are re-spelled in UTF-8, each of their bytes as one character (Latin-1),
    so that werkzeug reads a name in any encoding, to be decoded with the values once the body's is known."""
    delimiter = b"--" + boundary
    head, *parts = data.split(delimiter)
    spelled = [head]
    for part in parts:
        headers, gap, rest = part.partition(b"\r\n\r\n")
        if not gap:
            headers, gap, rest = part.partition(b"\n\n")
        spelled.append(headers.decode(_BYTES_AS_TEXT).encode("utf-8") + gap + rest)
    return delimiter.join(spelled)


def _body_charset(raw: RawPairs, declared: str | None) -> tuple[str, tuple[str, ...]]:
    """The codec a form body is read in, and the warning when it had to be guessed (see the module)."""
    if declared is not None:
        return _form_charset(declared, "Content-Type"), ()
    named = next((value for name, value in raw if name == CHARSET_FIELD.encode() and value.strip()), None)
    if named is not None:
        return _form_charset(named.decode(_BYTES_AS_TEXT).strip(), CHARSET_FIELD), ()
    if all(_is_utf8(name) and _is_utf8(value) for name, value in raw):
        return "utf-8", ()
    return LEGACY_CHARSET, (NOT_UTF8_WARNING,)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _form_charset(declared: str, where: str) -> str:
    """The codec of a charset a post names (in `where`); `UnsupportedMediaTypeError` for one that is not a
    web text charset."""
    label = declared.strip().lower()
    try:
        name = codecs.lookup(_WHATWG_ONLY_LABELS.get(label, label)).name
    except (LookupError, ValueError):  # an unknown name; one holding a NUL
        name = ""
    if name not in _FORM_CHARSETS:
        expected = "expected a text charset such as utf-8 or iso-8859-1"
        raise UnsupportedMediaTypeError(f"unsupported charset in {where}", {where: [expected]})  # never the value
    return name


def _by_name(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    values_by_name: dict[str, list[Any]] = {}
    for name, value in pairs:
        if name:
            values_by_name.setdefault(name, []).append(value)
    return {name: _filled(values) for name, values in values_by_name.items()}


def _without_blank_copies(body: dict[str, Any]) -> dict[str, Any]:
    """A JSON post's fields, a list holding a blank copy beside filled ones read as a form's repeated name is (a
    script may list every copy of an input, as the page's form holds them)."""
    return {
        name: _filled(value) if isinstance(value, list) and len(value) > 1 and any(map(_is_blank, value)) else value
        for name, value in body.items()
    }


def _filled(values: list[Any]) -> Any:
    """The filled values of a name: one gives that value, several a list; none, the first (blank) one."""
    filled = [value for value in values if not _is_blank(value)] or values[:1]
    return filled[0] if len(filled) == 1 else filled


def _is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()
