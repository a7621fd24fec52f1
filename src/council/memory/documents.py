"""Documents for the knowledge store: find files, extract clean text, cut it into chunks.

Three stages, each usable alone: `iter_documents` expands the paths given to `council ingest`,
`read_document` turns one file into normalised text, and `chunk_text` cuts that text into
overlapping windows whose offsets let an answer cite "source + position".
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from council.errors import DocumentError


@dataclass(frozen=True)
class Chunk:
    """One window of a document: `text == source[start:end]`, numbered by `position`."""

    position: int
    start: int
    end: int
    text: str


# --- Stage 1: which files ------------------------------------------------------------------


def iter_documents(paths: Iterable[Path]) -> Iterator[tuple[Path, DocumentError | None]]:
    """Yield each supported file under `paths` with None, or a bad path with its error."""
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            yield from _walk(path, seen)
        elif not path.exists():
            yield path, DocumentError(path, "does not exist; check the path and try again")
        elif not path.is_file():
            yield path, DocumentError(path, _NOT_REGULAR)
        elif path.suffix.lower() not in SUPPORTED:
            yield path, DocumentError(path, _unsupported(path))
        elif _first_visit(path, seen):
            yield path, None


def _walk(folder: Path, seen: set[Path]) -> Iterator[tuple[Path, DocumentError | None]]:
    # `seen` holds resolved paths: a symlink back up the tree must not loop forever, and a file
    # named twice (directly and through its folder) is ingested once.
    if not _first_visit(folder, seen):
        return
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as exc:
        yield folder, DocumentError(folder, f"cannot list this folder ({_reason(exc)}); {_FIX}")
        return
    for entry in entries:
        # Only names below the folder count as hidden, so a folder inside ~/.cache still works.
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, seen)
        elif entry.suffix.lower() not in SUPPORTED:
            continue  # a folder of mixed files is normal: images and the like are not errors
        elif not entry.is_file():
            yield entry, DocumentError(entry, _NOT_REGULAR)
        elif _first_visit(entry, seen):
            yield entry, None


def _first_visit(path: Path, seen: set[Path]) -> bool:
    key = path.resolve()
    if key in seen:
        return False
    seen.add(key)
    return True


# --- Stage 2: clean text -------------------------------------------------------------------


def read_document(path: Path) -> str:
    """Extract the text of one supported file, normalised (NFC, \\n, no trailing spaces)."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DocumentError(path, _unsupported(path))
    text = normalise(reader(path, _read_bytes(path)))
    if not text:
        raise DocumentError(path, "contains no text, so there is nothing to ingest; skip it")
    return text


def _read_bytes(path: Path) -> bytes:
    # Checked first because opening a named pipe would block until a writer appears.
    if path.exists() and not path.is_file():
        raise DocumentError(path, _NOT_REGULAR)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(path, "does not exist; check the path and try again") from None
    except PermissionError:
        raise DocumentError(
            path, "permission denied; make it readable (chmod u+r) or ingest a copy"
        ) from None
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({_reason(exc)}); {_FIX}") from exc


def _decode(path: Path, data: bytes) -> str:
    # A UTF-16 file is full of NUL bytes, so its BOM must be honoured before the binary sniff.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DocumentError(
                path, _looks_binary("it has a UTF-16 mark but invalid UTF-16")
            ) from None
    if b"\x00" in data[:8192]:
        raise DocumentError(path, _looks_binary("it contains NUL bytes"))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            path, _looks_binary(f"byte {exc.start} is not UTF-8; if it is text, save it as UTF-8")
        ) from None


class _VisibleText(HTMLParser):
    """Collect the text a browser would show, with block elements as line breaks."""

    # Contents never shown: scripts, styles, fallbacks for no-JS browsers, inert templates.
    HIDDEN = frozenset({"script", "style", "noscript", "template"})
    # Paragraph-like blocks become a blank line, so chunking can prefer to cut between them.
    PARAGRAPH = frozenset(
        {"title", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table"}
        | {"blockquote", "pre", "section", "article", "header", "footer", "nav", "aside"}
        | {"main", "figure", "figcaption", "form", "address", "hr", "details", "summary"}
    )
    LINE = frozenset({"li", "tr", "dt", "dd", "caption"})
    CELL = frozenset({"td", "th"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive already unescaped
        self.parts: list[str] = []
        # Breaks are owed, not written, so `</li><li>` or `</p>\n<p>` give one break, not two.
        self._pending = 0
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag == "pre":
            self._pre += 1
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag != "br":  # `<br/>` arrives as start + end: count it once
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:
            data = re.sub(r"\s+", " ", data)  # a source newline is just a space, as in a browser
        if self._pending and not data.strip():
            return  # indentation between blocks
        if self._pending:
            self.parts.append("\n" * self._pending)
            self._pending = 0
        self.parts.append(data)

    def _break(self, tag: str) -> None:
        if self._hidden:
            return
        if tag == "br":
            # Each <br> ends a line, so <br><br> leaves a blank line as a browser shows it.
            self._pending = min(2, self._pending + 1)
        elif tag in self.PARAGRAPH:
            self._pending = 2
        elif tag in self.LINE:
            self._pending = max(1, self._pending)
        elif tag in self.CELL:
            self.parts.append(" ")

    def text(self) -> str:
        lines = "".join(self.parts).split("\n")
        return "\n".join(" ".join(line.split()) for line in lines)


def _html_text(path: Path, data: bytes) -> str:
    parser = _VisibleText()
    parser.feed(_decode(path, data))
    parser.close()
    return parser.text()


def _pdf_text(path: Path, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(io.BytesIO(data))
        # Many PDFs are encrypted only to restrict printing, with an empty user password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(
                path, "is encrypted with a password; save an unencrypted copy and ingest that"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except DependencyError as exc:
        raise DocumentError(
            path, f"needs an extra package to decrypt ({exc}); pip install cryptography"
        ) from exc
    except Exception as exc:
        # pypdf raises many exception types on damaged files (KeyError, ValueError, ...); each
        # is reported against the file and chained, so the cause is kept, not swallowed.
        raise DocumentError(
            path, f"is not a readable PDF ({type(exc).__name__}: {exc}); re-export or repair it"
        ) from exc
    if not any(page.strip() for page in pages):
        raise DocumentError(
            path,
            "has no text layer (probably scanned images); OCR it first, "
            "e.g. `ocrmypdf in.pdf out.pdf`, and ingest the result",
        )
    return "\n\n".join(pages)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    # Paragraphs end up separated by exactly one blank line, the break chunking looks for.
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


_READERS: dict[str, Callable[[Path, bytes], str]] = {
    ".txt": _decode,
    ".md": _decode,
    ".markdown": _decode,
    ".html": _html_text,
    ".htm": _html_text,
    ".pdf": _pdf_text,
}
SUPPORTED: frozenset[str] = frozenset(_READERS)

_NOT_REGULAR = (
    "is not a regular file (a folder, pipe or device); pass a document, or give a folder to "
    "`council ingest` to read the documents inside it"
)
_FIX = "check it exists and you can read it"


def _unsupported(path: Path) -> str:
    kind = f"'{path.suffix}'" if path.suffix else "files without a suffix"
    return f"{kind} is not supported; convert it to one of {', '.join(sorted(SUPPORTED))}"


def _looks_binary(detail: str) -> str:
    return f"looks binary, not text ({detail}); remove it from the paths to ingest"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


# --- Stage 3: chunks -----------------------------------------------------------------------

# A sentence ends at . ! ? or … (plus closing quotes/brackets) followed by whitespace.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")
_SPACE = re.compile(r"\s+")


def chunk_text(text: str, size: int = 800, overlap: int = 100) -> list[Chunk]:
    """Cut `text` into windows of at most `size` chars, each overlapping the last by ~`overlap`."""
    if size <= 0:
        raise ValueError(f"chunk size must be > 0, got {size}; use e.g. 800")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be >= 0 and < size ({size}), got {overlap}")
    chunks: list[Chunk] = []
    start = _skip_space(text, 0)
    while start < len(text):
        cut = _cut(text, start, size)
        end = start + len(text[start:cut].rstrip())
        if chunks and end <= chunks[-1].end:
            # The window held only the overlap and then blank space: a chunk inside the last
            # one adds nothing, so begin after it instead.
            start = _skip_space(text, chunks[-1].end)
            continue
        chunks.append(Chunk(len(chunks), start, end, text[start:end]))
        if _skip_space(text, cut) == len(text):
            break
        start = _skip_space(text, _next_start(text, start, end, overlap))
    return chunks


def _cut(text: str, start: int, size: int) -> int:
    """Where the window starting at `start` should end: the best break in its last quarter."""
    limit = start + size
    if limit >= len(text):
        return len(text)
    low = max(start + 1, limit - size // 4)
    paragraph = text.rfind("\n\n", low, limit)
    if paragraph != -1:
        return paragraph
    # endpos one past the limit lets the lookahead see the space right after the window.
    sentences = [m.end() for m in _SENTENCE_END.finditer(text, low, limit + 1)]
    if sentences:
        return sentences[-1]
    line = text.rfind("\n", low, limit)
    if line != -1:
        return line
    for pos in range(limit - 1, low - 1, -1):
        if text[pos].isspace():
            return pos
    return limit  # one long word (or no spaces at all): cut it hard


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    # Always at least one char past `start`, so a huge overlap or a wordless text still ends.
    nxt = max(end - overlap, start + 1)
    if nxt < end and not text[nxt - 1].isspace():
        # Begin the overlap at a word start rather than mid-word, if one lies inside it.
        space = _SPACE.search(text, nxt, end)
        if space:
            nxt = space.end()
    return nxt


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


# --- Identity ------------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    """SHA-256 hex digest of the file's bytes, read in blocks (large files stay out of memory)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({_reason(exc)}); {_FIX}") from exc
