"""Documents: real files on disk (text, HTML, hand-built PDFs) through discovery, extraction,
chunking and digests."""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from council.errors import CouncilError, DocumentError
from council.memory.documents import (
    SUPPORTED,
    Chunk,
    chunk_text,
    file_digest,
    iter_documents,
    read_document,
)


def pdf_bytes(*pages: str) -> bytes:
    """A minimal valid PDF, one Helvetica text line per page, with a correct xref table."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, line in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode()
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def encrypted(pdf: bytes, user: str, owner: str) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt(user_password=user, owner_password=owner)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# --- read_document: plain text -------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf"} == SUPPORTED


@pytest.mark.parametrize("name", ["notes.txt", "notes.md", "notes.markdown", "NOTES.TXT"])
def test_reads_plain_text_and_markdown(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, "# Title\n\nSome *markdown* text.\n")
    assert read_document(path) == "# Title\n\nSome *markdown* text."


def test_normalises_line_ends_trailing_spaces_blank_runs_and_nfc(tmp_path: Path) -> None:
    raw = "\n\ncafe\u0301  \r\nline two\t\r\n\r\n\r\n\r\n\r\nafter gap\rold mac\n\n\n"
    text = read_document(write(tmp_path / "a.txt", raw))
    assert text == "caf\u00e9\nline two\n\nafter gap\nold mac"


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbfhello")
    assert read_document(path) == "hello"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_with_bom_is_decoded(tmp_path: Path, codec: str) -> None:
    data = "\ufeffgrüße aus UTF-16".encode(codec)
    if codec == "utf-16":  # Python's utf-16 codec writes its own BOM; keep exactly one
        data = "grüße aus UTF-16".encode(codec)
    assert read_document(write(tmp_path / "wide.txt", data)) == "grüße aus UTF-16"


def test_nul_bytes_mean_binary_and_the_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DocumentError, match="looks binary") as info:
        read_document(path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert isinstance(info.value, CouncilError)


def test_non_utf8_text_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.md", "café".encode("latin-1"))
    with pytest.raises(DocumentError, match="save it as UTF-8") as info:
        read_document(path)
    assert str(path) in str(info.value)


def test_empty_file_is_an_error_not_a_silent_zero_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.txt", "  \n\n \n")
    with pytest.raises(DocumentError, match="no text"):
        read_document(path)


def test_unsupported_suffix_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "report.docx", b"PK\x03\x04")
    with pytest.raises(DocumentError, match=r"'\.docx' is not supported.*\.pdf"):
        read_document(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="does not exist") as info:
        read_document(tmp_path / "gone.md")
    assert info.value.path == tmp_path / "gone.md"


def test_folder_named_like_a_document_is_not_a_regular_file(tmp_path: Path) -> None:
    folder = tmp_path / "x.txt"
    folder.mkdir()
    with pytest.raises(DocumentError, match="not a regular file") as info:
        read_document(folder)
    assert str(folder) in str(info.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files regardless of mode"
)
def test_unreadable_file_names_it(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.txt", "classified")
    path.chmod(0)
    try:
        with pytest.raises(DocumentError, match="permission denied") as info:
            read_document(path)
        assert str(path) in str(info.value)
    finally:
        path.chmod(0o600)


def test_permission_error_message_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root ignores file modes, so the test above skips there; this one fakes the refusal.
    path = write(tmp_path / "secret.md", "classified")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DocumentError, match="permission denied; make it readable") as info:
        read_document(path)
    assert info.value.path == path


# --- read_document: HTML -------------------------------------------------------------------


PAGE = """<!DOCTYPE html>
<html><head>
  <title>Fish &amp; Chips</title>
  <meta charset="utf-8"><style>body { color: red; }</style>
  <script>var secret = "<p>not shown</p>";</script>
</head>
<body>
  <noscript>Please enable JavaScript</noscript>
  <h1>Menu</h1>
  <p>Cod   costs
     &pound;5 &mdash; <b>bold</b>ly &lt;fried&gt;&nbsp;today.</p>
  <!-- a comment nobody sees -->
  <ul><li>Peas</li><li>Vinegar</li></ul>
  <div>First line<br>second line</div>
  <table><tr><td>A</td><td>B</td></tr><tr><td>C</td><td>D</td></tr></table>
  <template><p>inert</p></template>
  <script type="module">console.log("also hidden")</script>
</body></html>
"""


@pytest.mark.parametrize("name", ["page.html", "page.htm"])
def test_html_keeps_visible_text_in_blocks(tmp_path: Path, name: str) -> None:
    text = read_document(write(tmp_path / name, PAGE))
    assert text == (
        "Fish & Chips\n\n"
        "Menu\n\n"
        "Cod costs £5 — boldly <fried> today.\n\n"  # nbsp is whitespace too
        "Peas\nVinegar\n\n"
        "First line\nsecond line\n\n"
        "A B\nC D"
    )


def test_html_drops_scripts_styles_and_comments(tmp_path: Path) -> None:
    text = read_document(write(tmp_path / "page.html", PAGE))
    for hidden in ("secret", "color", "not shown", "JavaScript", "comment", "inert", "console"):
        assert hidden not in text


def test_html_pre_keeps_its_line_breaks(tmp_path: Path) -> None:
    html = "<p>Run:</p><pre>make test\nmake lint</pre><p>Done.</p>"
    text = read_document(write(tmp_path / "code.html", html))
    assert text == "Run:\n\nmake test\nmake lint\n\nDone."


def test_html_with_only_a_script_has_no_text(tmp_path: Path) -> None:
    path = write(tmp_path / "app.html", "<html><body><script>boot()</script></body></html>")
    with pytest.raises(DocumentError, match="no text"):
        read_document(path)


# --- read_document: PDF --------------------------------------------------------------------


def test_hand_built_pdf_is_valid_for_pypdf() -> None:
    reader = PdfReader(io.BytesIO(pdf_bytes("Hello PDF world")))
    assert reader.pages[0].extract_text() == "Hello PDF world"


def test_pdf_pages_are_joined_with_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "two.pdf", pdf_bytes("Hello PDF world", "Second page here"))
    assert read_document(path) == "Hello PDF world\n\nSecond page here"


def test_password_protected_pdf_says_so(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.pdf", encrypted(pdf_bytes("Top secret"), "pw", "pw"))
    with pytest.raises(DocumentError, match="encrypted with a password") as info:
        read_document(path)
    assert str(path) in str(info.value)


def test_pdf_encrypted_only_for_permissions_is_read(tmp_path: Path) -> None:
    # An empty user password: any viewer opens it, so we should too.
    path = write(tmp_path / "nocopy.pdf", encrypted(pdf_bytes("Open to all"), "", "owner"))
    assert read_document(path) == "Open to all"


def test_pdf_without_text_layer_asks_for_ocr(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    path = write(tmp_path / "scan.pdf", buffer.getvalue())
    with pytest.raises(DocumentError, match=r"no text layer.*OCR"):
        read_document(path)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4 this is not really a pdf", b"just some text with a .pdf name"],
    ids=["garbage", "not-a-pdf"],
)
def test_broken_pdf_is_a_document_error(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "broken.pdf", data)
    with pytest.raises(DocumentError, match="not a readable PDF") as info:
        read_document(path)
    assert info.value.path == path
    assert info.value.__cause__ is not None  # the parser's own error is kept for debugging


# --- iter_documents ------------------------------------------------------------------------


def test_folders_expand_recursively_sorted_skipping_hidden_and_unsupported(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    for name in [
        "b.md",
        "a.txt",
        "sub/z.pdf",
        "sub/deeper/page.html",
        "c.htm",
        "photo.png",  # unsupported inside a folder: silently skipped
        "sub/notes.markdown",
        ".hidden.md",
        ".git/HEAD.txt",
        "sub/.cache/x.md",
    ]:
        write(docs / name, "text")
    found = list(iter_documents([docs]))
    assert all(error is None for _, error in found)
    assert [path.relative_to(docs).as_posix() for path, _ in found] == [
        "a.txt",
        "b.md",
        "c.htm",
        "sub/deeper/page.html",
        "sub/notes.markdown",
        "sub/z.pdf",
    ]


def test_a_folder_inside_a_hidden_folder_still_works(tmp_path: Path) -> None:
    write(tmp_path / ".config" / "docs" / "a.md", "text")
    found = list(iter_documents([tmp_path / ".config" / "docs"]))
    assert found == [(tmp_path / ".config" / "docs" / "a.md", None)]


def test_explicit_bad_paths_are_reported_by_name_and_the_rest_goes_on(tmp_path: Path) -> None:
    good = write(tmp_path / "good.md", "ok")
    missing = tmp_path / "missing.txt"
    unsupported = write(tmp_path / "slides.pptx", b"PK")
    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    hidden = write(tmp_path / ".explicit.md", "named on purpose")
    found = list(iter_documents([missing, unsupported, pipe, good, hidden]))
    assert [path for path, _ in found] == [missing, unsupported, pipe, good, hidden]
    errors = [error for _, error in found]
    assert isinstance(errors[0], DocumentError)
    assert "does not exist" in str(errors[0])
    assert isinstance(errors[1], DocumentError)
    assert "'.pptx' is not supported" in str(errors[1])
    assert isinstance(errors[2], DocumentError)
    assert "not a regular file" in str(errors[2])
    assert errors[3:] == [None, None]
    for (_, error), expected in zip(found[:3], [missing, unsupported, pipe], strict=True):
        assert error is not None and error.path == expected and str(expected) in str(error)


def test_each_file_is_yielded_once_and_symlink_loops_are_not_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    a = write(docs / "a.md", "text")
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    listed: list[Path] = []
    real_iterdir = Path.iterdir

    def spy(self: Path) -> Iterator[Path]:
        listed.append(self)
        return real_iterdir(self)

    # Without a guard the OS stops the loop only after ~40 levels, which dedup would hide.
    monkeypatch.setattr(Path, "iterdir", spy)
    found = list(iter_documents([docs, a, docs / "a.md", docs / "loop"]))
    assert found == [(a, None)]
    assert listed == [docs]


# --- chunk_text ----------------------------------------------------------------------------


def prose(paragraphs: int = 12) -> str:
    words = ["the", "council", "votes", "on", "every", "answer", "and", "keeps", "what"]
    words += ["most", "heads", "agree", "with"]
    out = []
    for p in range(paragraphs):
        sentences = []
        for s in range(6):
            n = 6 + (p * 7 + s * 3) % 9
            sentence = " ".join(words[(p + s + i) % len(words)] for i in range(n))
            sentences.append(sentence.capitalize() + ".")
        out.append(" ".join(sentences))
    return "\n\n".join(out)


def assert_located(text: str, chunks: list[Chunk]) -> None:
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text.strip() == chunk.text != ""


def test_chunks_respect_size_and_locate_their_text() -> None:
    text = prose()
    chunks = chunk_text(text, size=300, overlap=50)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 for c in chunks)
    assert_located(text, chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_consecutive_chunks_overlap_by_about_the_overlap() -> None:
    text = prose()
    chunks = chunk_text(text, size=300, overlap=50)
    for before, after in pairwise(chunks):
        shared = before.end - after.start
        assert 30 <= shared <= 50, (before, after)
        assert text[after.start - 1].isspace()  # the overlap starts at a word, not mid-word


def test_no_overlap_means_chunks_tile_the_text() -> None:
    text = prose()
    chunks = chunk_text(text, size=300, overlap=0)
    for before, after in pairwise(chunks):
        assert before.end <= after.start
        assert text[before.end : after.start].strip() == ""
    squeeze = "".join  # compare without whitespace: the gaps between chunks are blank
    assert squeeze(squeeze(c.text.split()) for c in chunks) == squeeze(text.split())


def test_chunks_end_at_a_paragraph_break_when_one_is_near() -> None:
    first = "Alpha beta gamma. " * 12  # 216 chars: the break falls in the last quarter
    text = first.strip() + "\n\n" + "Delta epsilon zeta. " * 20
    chunks = chunk_text(text, size=250, overlap=20)
    assert chunks[0].text == first.strip()
    assert text[chunks[0].end : chunks[0].end + 2] == "\n\n"


def test_chunks_end_at_a_sentence_end_before_a_mere_space() -> None:
    sentence = "One two three four five six seven eight nine ten. "  # 50 chars
    text = sentence * 40
    chunks = chunk_text(text, size=230, overlap=30)
    assert len(chunks) > 5
    for chunk in chunks[:-1]:
        assert chunk.text.endswith("ten."), chunk.text[-20:]


def test_chunks_end_at_a_space_when_there_is_no_sentence_end() -> None:
    text = " ".join(f"word{i:04d}" for i in range(400))
    chunks = chunk_text(text, size=200, overlap=20)
    assert_located(text, chunks)
    for chunk in chunks:
        assert chunk.text.split()[0].startswith("word") and len(chunk.text.split()[0]) == 8
        assert len(chunk.text.split()[-1]) == 8  # never a word cut in half


def test_progress_on_a_long_string_without_spaces() -> None:
    text = "x" * 10_000
    chunks = chunk_text(text, size=800, overlap=100)
    assert_located(text, chunks)
    assert all(len(c.text) <= 800 for c in chunks)
    assert chunks[-1].end == 10_000
    assert [c.start for c in chunks[:3]] == [0, 700, 1400]
    assert len(chunks) == 15


def test_progress_when_overlap_is_almost_the_size() -> None:
    text = "abcdefghij" * 50
    chunks = chunk_text(text, size=10, overlap=9)
    assert [c.start for c in chunks] == list(range(len(text) - 9))
    assert chunks[-1].end == len(text)


def test_blank_text_gives_no_chunks_and_whitespace_never_makes_one() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n\t ") == []
    text = "\n\n   Lead.\n\n\n\n   " + "\n" * 50 + "Tail.   \n\n"
    chunks = chunk_text(text, size=20, overlap=5)
    assert [c.text for c in chunks] == ["Lead.", "Tail."]
    assert_located(text, chunks)


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  Just one line.  ") == [Chunk(0, 2, 16, "Just one line.")]


def test_chunk_invariants_on_random_texts() -> None:
    rng = random.Random(0)
    pieces = ["a", "Word", " ", " ", "\n", "\n\n", ". ", "! ", "\t", "é", "”"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 200)))
        size = rng.randint(1, 50)
        overlap = rng.randint(0, size - 1)
        chunks = chunk_text(text, size=size, overlap=overlap)
        assert_located(text, chunks)
        assert all(len(c.text) <= size for c in chunks)
        # Each chunk reaches further than the last (no chunk hidden inside another) ...
        assert all(a.start < b.start and a.end < b.end for a, b in pairwise(chunks))
        # ... and together they cover every non-blank character.
        covered = {i for c in chunks for i in range(c.start, c.end)}
        assert all(ch.isspace() or i in covered for i, ch in enumerate(text)), (text, size)


def test_html_double_br_is_a_blank_line(tmp_path: Path) -> None:
    html = "<body>Dear all,<br><br/>The vote is in.<br>Regards</body>"
    text = read_document(write(tmp_path / "mail.html", html))
    assert text == "Dear all,\n\nThe vote is in.\nRegards"


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [
        (0, 0, "size must be > 0"),
        (-5, 0, "size must be > 0"),
        (100, -1, "overlap must be >= 0 and < size"),
        (100, 100, "overlap must be >= 0 and < size"),
        (100, 150, "overlap must be >= 0 and < size"),
    ],
)
def test_invalid_size_or_overlap(size: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_text("some text", size=size, overlap=overlap)


def test_read_then_chunk_a_real_document(tmp_path: Path) -> None:
    text = read_document(write(tmp_path / "long.md", prose(20)))
    chunks = chunk_text(text)
    assert len(chunks) > 3
    assert_located(text, chunks)


# --- file_digest ---------------------------------------------------------------------------


def test_digest_is_sha256_and_changes_with_content(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)  # several read blocks
    path = write(tmp_path / "big.txt", data)
    first = file_digest(path)
    assert first == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert file_digest(path) != first
    path.write_bytes(data)
    assert file_digest(path) == first


def test_digest_of_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="cannot be read") as info:
        file_digest(tmp_path / "nope.pdf")
    assert str(tmp_path / "nope.pdf") in str(info.value)
