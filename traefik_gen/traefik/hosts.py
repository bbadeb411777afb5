"""Host names as they may appear in a Traefik rule: validated, ASCII, lower-case.

Policy of `normalize_host` (the README repeats it):

- Surrounding whitespace is trimmed, as Dokploy trims hostnames; whitespace inside, control
  characters and NUL are rejected.
- The name is mapped with UTS #46 (non-transitional) and each non-ASCII label is encoded
  with IDNA 2008 by the `idna` package, as browsers and Dokploy (WHATWG URL parsing) do:
  `bücher.example` becomes `xn--bcher-kva.example`, `ß` stays a distinct letter
  (`straße.de` becomes `xn--strae-oqa.de`), upper case becomes lower case, full-width
  letters and ideographic full stops are mapped to their ASCII forms.
- One trailing dot is dropped (`example.com.` is `example.com`); an empty label anywhere
  else is rejected.
- A pure-ASCII label is letters, digits, `-` and `_`; it may not start or end with `-`.
  `_` may appear anywhere in it, including first (`_acme`, `my_app`): DNS uses such names
  and WHATWG parsing accepts them. A label with any non-ASCII letter may not hold `_`,
  because IDNA 2008 forbids it. An ASCII label starting `xn--` must be valid punycode, in
  its canonical form, of a valid IDNA 2008 label.
- Labels are at most 63 octets and the whole name at most 253, in the ASCII form.
- A name whose last label is a number must be a dotted-decimal IPv4 address: browsers
  parse such names as IPv4 and would send another Host header (`1.2.3` is `1.2.0.3`).
- A leading `*.` makes a wildcard for exactly one label (what `Host("*.x")` means in
  Traefik 3.7). `*` must be the whole first label, and a name must follow it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from traefik_gen.errors import RuleError
from traefik_gen.traefik.rules import quote

__all__ = ["Host", "normalize_host", "usable_url"]

logger = logging.getLogger(__name__)

_MAX_LABEL = 63
_MAX_NAME = 253
# Printable ASCII without space: what nearly every host and URL is made of.
_VISIBLE_ASCII = re.compile(r"[!-~]+")
_LOWER_LDH = re.compile(r"[a-z0-9._*-]+")
_ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# What Go's regexp.QuoteMeta escapes.
_REGEX_SPECIALS = frozenset("\\.+*?()|[]{}^$")

# Limitation: IPv6 literals ("[::1]") are rejected; Dokploy domains are names, and a
# bracketed address would need its own matcher form.


@dataclass(frozen=True, slots=True)
class Host:
    """A validated host: `name` is the ASCII form, `*.example.com` for a wildcard."""

    name: str
    wildcard: bool = False

    @property
    def suffix(self) -> str:
        """The name below the wildcard label (the name itself when not a wildcard)."""
        return self.name[2:] if self.wildcard else self.name

    def matcher(self) -> str:
        """The rule matcher for this host, with its value quoted as a Go string."""
        if self.wildcard:
            return f"HostRegexp({quote(self.regexp())})"
        return f"Host({quote(self.name)})"

    def regexp(self) -> str:
        """A HostRegexp pattern for this host; a wildcard takes exactly one label.

        Traefik 3.6 has no wildcard Host(), so a HostRegexp is the form every line reads
        the same way. Traefik lower-cases the request host before matching it, and the
        optional final dot mirrors Host(), which also matches `name.`.
        """
        label = "[^.]+\\." if self.wildcard else ""
        return "^" + label + _quote_meta(self.suffix) + "\\.?$"


def normalize_host(raw: str, *, field: str = "host") -> Host:
    """Validate a host name and return its ASCII form (module docstring: the policy).

    Raises:
        RuleError: the value cannot be a host; the message names `field` and the value.
    """
    text = raw.strip()
    _check_characters(text, raw, field)
    # UTS #46 maps each of these characters to itself: the usual host skips the table.
    mapped = text if _LOWER_LDH.fullmatch(text) else _map_uts46(text, raw, field)
    labels = _split_labels(mapped, raw, field)
    wildcard = labels[0] == "*"
    if wildcard:
        labels = labels[1:]
    if not labels:
        raise RuleError(f"{field} {raw!r} has no name after '*.'")
    name = ".".join(_ascii_label(label, raw, field) for label in labels)
    host = Host(name=f"*.{name}" if wildcard else name, wildcard=wildcard)
    _check_length(host.name, raw, field)
    _check_numeric(host, raw, field)
    if host.name != text:
        logger.debug("%s %r normalized to %r", field, raw, host.name)
    return host


def _check_characters(text: str, raw: str, field: str) -> None:
    if not text:
        raise RuleError(f"{field} {raw!r} is empty")
    if _VISIBLE_ASCII.fullmatch(text):
        # The usual case, at once: no control character, surrogate or space in it.
        return
    for char in text:
        if unicodedata.category(char) == "Cc":
            raise RuleError(f"{field} {raw!r} contains a control character")
        if unicodedata.category(char) == "Cs":
            raise RuleError(f"{field} {raw!r} contains a lone surrogate")
        if char.isspace():
            raise RuleError(f"{field} {raw!r} contains whitespace")


def _map_uts46(text: str, raw: str, field: str) -> str:
    # std3_rules=False keeps `_`, which UTS #46 would otherwise refuse; the label checks
    # below decide what ASCII is allowed. Mapping is non-transitional (ß is kept), the
    # default of every idna release and the only mode of recent ones.
    try:
        return idna.uts46_remap(text, std3_rules=False)
    except idna.IDNAError as err:
        raise RuleError(f"{field} {raw!r} has a character no host name may hold") from err


def _split_labels(mapped: str, raw: str, field: str) -> list[str]:
    labels = mapped.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if "" in labels:
        raise RuleError(f"{field} {raw!r} has an empty label")
    for position, label in enumerate(labels):
        if "*" in label and (position > 0 or label != "*"):
            raise RuleError(f"{field} {raw!r}: '*' is allowed only as the whole first label")
    return labels


def _ascii_label(label: str, raw: str, field: str) -> str:
    if not label.isascii():
        return _encode_idn_label(label, raw, field)
    if label.startswith("xn--"):
        _check_punycode(label, raw, field)
    elif not _ASCII_LABEL.fullmatch(label):
        raise RuleError(f"{field} {raw!r} has an invalid label {label!r}: {_why_bad(label)}")
    if len(label) > _MAX_LABEL:
        raise RuleError(f"{field} {raw!r} has a label longer than {_MAX_LABEL} octets")
    return label


def _why_bad(label: str) -> str:
    for char in label:
        if not (char.isalnum() or char in "-_"):
            return f"{char!r} is not a letter, digit, '-' or '_'"
    return "it starts or ends with '-'"


def _encode_idn_label(label: str, raw: str, field: str) -> str:
    if "_" in label:
        raise RuleError(f"{field} {raw!r}: '_' is allowed only in all-ascii labels")
    try:
        encoded = idna.alabel(label)
    except idna.IDNAError as err:
        reason = _lower_first(str(err))
        raise RuleError(f"{field} {raw!r} has an invalid label {label!r}: {reason}") from err
    return encoded.decode("ascii")


def _check_punycode(label: str, raw: str, field: str) -> None:
    try:
        idna.ulabel(label)
    except idna.IDNAError as err:
        reason = _lower_first(str(err))
        raise RuleError(f"{field} {raw!r} has invalid punycode {label!r}: {reason}") from err


def _check_length(name: str, raw: str, field: str) -> None:
    if len(name) > _MAX_NAME:
        raise RuleError(f"{field} {raw!r} is longer than {_MAX_NAME} octets in ascii")


def _check_numeric(host: Host, raw: str, field: str) -> None:
    if not _NUMERIC_LABEL.fullmatch(host.name.rsplit(".", 1)[-1]):
        return
    if host.wildcard:
        raise RuleError(f"{field} {raw!r} is a wildcard over an ipv4 address")
    try:
        canonical = str(ipaddress.IPv4Address(host.name))
    except ipaddress.AddressValueError:
        canonical = None
    if canonical != host.name:
        raise RuleError(
            f"{field} {raw!r} ends in a number but is not a dotted-decimal ipv4 address"
        )


def _quote_meta(text: str) -> str:
    return "".join("\\" + char if char in _REGEX_SPECIALS else char for char in text)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def usable_url(url: str) -> bool:
    """A server URL Traefik's load balancer accepts: http(s)/h2c, a host, no space."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https", "h2c")
        and bool(parts.hostname)
        and (_VISIBLE_ASCII.fullmatch(url) is not None or _printable_without_space(url))
    )


def _printable_without_space(text: str) -> bool:
    return not any(char.isspace() or not char.isprintable() for char in text)
