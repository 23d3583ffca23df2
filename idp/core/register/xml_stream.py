"""Streaming XML reading for register exports: small elements handed out one at a time, with their line.

Built on expat (the parser under ``xml.etree.ElementTree.iterparse``) so that each element knows the line
it starts on, which error messages need. The document is fed in 64 KiB chunks and only the element being
read is kept. Document type declarations are refused twice: by looking at the head of the file before
parsing, and by expat handlers, so no entity is ever declared or expanded (billion laughs, external
entities). The encoding named in the XML declaration is honoured (ISO-8859-1/15, Windows-1252, UTF-8).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

CHUNK = 64 * 1024
HEAD = 16 * 1024


class XmlRefused(Exception):
    """The file cannot be read as a whole: malformed, or carrying a DOCTYPE/ENTITY declaration."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


@dataclass
class Element:
    """A captured element: attributes, text of its children, and grandchildren grouped per child."""

    tag: str
    line: int
    attrs: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    groups: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def get(self, name: str) -> str:
        """An attribute, or else a child's text, or ``""``."""
        return self.attrs.get(name) or self.fields.get(name, "")


class _Collector:
    """Expat handlers keeping only the elements asked for (and their two levels below)."""

    def __init__(self, parser: expat.XMLParserType, wanted: frozenset[str]) -> None:
        self.parser, self.wanted = parser, wanted
        self.depth = 0
        self.root = ""
        self.ready: list[Element] = []
        self.current: Element | None = None
        self.base = 0
        self.text: list[str] = []
        self.group: dict[str, str] = {}
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.chars
        parser.StartDoctypeDeclHandler = self.refuse
        parser.EntityDeclHandler = self.refuse
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(self, *_args: object) -> None:
        """Expat handler for DOCTYPE and ENTITY declarations: stop the parse."""
        raise XmlRefused(self.parser.CurrentLineNumber, "déclaration DOCTYPE ou ENTITY refusée")

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        """Expat handler: start capturing a wanted element, or a child of the captured one."""
        self.depth += 1
        if self.depth == 1:
            self.root = tag
        if self.current is None:
            if tag in self.wanted:
                self.current = Element(tag, self.parser.CurrentLineNumber, dict(attrs))
                self.base = self.depth
            return
        level = self.depth - self.base
        if level == 1:
            self.group = {}
        if level <= 2:
            self.text = []

    def chars(self, data: str) -> None:
        """Expat handler: text of a captured child or grandchild."""
        if self.current is not None and self.depth - self.base in (1, 2):
            self.text.append(data)

    def end(self, tag: str) -> None:
        """Expat handler: file a child's text, or hand over the finished element."""
        level = self.depth - self.base
        self.depth -= 1
        current = self.current
        if current is None:
            return
        if level == 0:
            self.ready.append(current)
            self.current = None
        elif level == 1:
            if self.group:
                current.groups.append((tag, self.group))
            else:
                current.fields.setdefault(tag, "".join(self.text).strip())
        elif level == 2:
            self.group[tag] = "".join(self.text).strip()


def _refuse_declarations(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(HEAD)
    for marker in (b"<!DOCTYPE", b"<!ENTITY"):
        at = head.upper().find(marker)
        if at >= 0:
            raise XmlRefused(head.count(b"\n", 0, at) + 1, "déclaration DOCTYPE ou ENTITY refusée")


def elements(path: Path, wanted: frozenset[str], root: str) -> Iterator[Element]:
    """Yield the ``wanted`` elements of an XML file in document order; raise ``XmlRefused`` on a bad file."""
    _refuse_declarations(path)
    parser = expat.ParserCreate()
    collector = _Collector(parser, wanted)
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                parser.Parse(chunk, False)
                if collector.root and collector.root != root:
                    raise XmlRefused(1, f"racine <{collector.root}> au lieu de <{root}> : ce n'est pas le bon "
                                        "fichier d'export")
                yield from collector.ready
                collector.ready.clear()
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise XmlRefused(exc.lineno, f"XML mal formé ({expat.ErrorString(exc.code)})") from None
    if collector.root != root:
        raise XmlRefused(1, f"racine <{collector.root or '?'}> au lieu de <{root}>")
    yield from collector.ready
