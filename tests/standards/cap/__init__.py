"""The official OASIS CAP 1.2 schema (CAP-v1.2.xsd, see NOTICE) and a validator built on it with lxml."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

XSD = Path(__file__).with_name("CAP-v1.2.xsd")


@cache
def schema() -> etree.XMLSchema:
    """The CAP 1.2 schema, parsed once."""
    return etree.XMLSchema(etree.parse(str(XSD)))


def validate(body: bytes) -> etree._Element:
    """Parse `body` and raise `etree.DocumentInvalid` (with the line and reason) unless it is a valid CAP 1.2
    alert; the parsed root otherwise."""
    root = etree.fromstring(body)
    schema().assertValid(root)
    return root


def is_valid(body: bytes) -> bool:
    return bool(schema().validate(etree.fromstring(body)))
