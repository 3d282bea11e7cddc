"""Attachments: real files of every kind, accepted or refused, stored by hash without metadata."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from board.i18n import current_locale
from board.uploads import (
    StoredFile,
    UploadRejected,
    allowed_kinds,
    detect_kind,
    safe_filename,
    store_upload,
    stored_path,
)

UPLOAD_TYPES = ("pdf", "zip", "jpg", "jpeg", "png", "docx", "xlsx", "xls")
MAX_BYTES = 20 * 1024 * 1024
GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE, MODEL = 0x010F, 0x0110


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    token = current_locale.set("en")
    yield
    current_locale.reset(token)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def store(
    data_dir: Path,
    content: bytes,
    name: str,
    upload_types: tuple[str, ...] = UPLOAD_TYPES,
    max_bytes: int = MAX_BYTES,
) -> StoredFile:
    return store_upload(io.BytesIO(content), name, data_dir / "uploads", upload_types, max_bytes)


def refusal(data_dir: Path, content: bytes, name: str, **options) -> str:
    with pytest.raises(UploadRejected) as caught:
        store(data_dir, content, name, **options)
    assert caught.value.filename in caught.value.message
    assert_nothing_left(data_dir)
    return caught.value.message


def stored_files(data_dir: Path) -> list[Path]:
    uploads = data_dir / "uploads"
    return [
        path
        for path in uploads.rglob("*")
        if path.is_file() and path.relative_to(uploads).parts[0] != "tmp"
    ]


def assert_nothing_left(data_dir: Path) -> None:
    temp_dir = data_dir / "uploads" / "tmp"
    assert not temp_dir.exists() or list(temp_dir.iterdir()) == []
    assert stored_files(data_dir) == []


# --- real files -----------------------------------------------------------------------------


def pdf_bytes(text: str = "Rechnung 1042") -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = "Canon"
    exif[MODEL] = "EOS 5D"
    exif[ORIENTATION] = orientation
    # GPSLatitudeRef, GPSLatitude, GPSLongitudeRef, GPSLongitude: a customer's home.
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    return exif


def jpeg_bytes(size: tuple[int, int] = (40, 20), orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 20, 200), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="JPEG",
        exif=camera_exif(orientation),
        comment=b"Kunde 4711",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">Kunde 4711</x:xmpmeta>',
    )
    return buffer.getvalue()


def png_bytes(size: tuple[int, int] = (30, 30), color: tuple[int, int, int] = (0, 128, 0)) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("Author", "Kunde 4711")
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>Kunde 4711</x:xmpmeta>")
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG", exif=camera_exif(), pnginfo=text)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


CONTENT_TYPES_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="xml" ContentType="application/xml"/></Types>'
)


def docx_bytes() -> bytes:
    return zip_bytes(
        {
            "[Content_Types].xml": CONTENT_TYPES_XML,
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": b"<w:document><w:body><w:p>Hallo</w:p></w:body></w:document>",
        }
    )


def xlsx_bytes() -> bytes:
    return zip_bytes(
        {
            "[Content_Types].xml": CONTENT_TYPES_XML,
            "_rels/.rels": b"<Relationships/>",
            "xl/workbook.xml": b"<workbook><sheets><sheet name='Tabelle1'/></sheets></workbook>",
            "xl/worksheets/sheet1.xml": b"<worksheet><sheetData/></worksheet>",
        }
    )


def xls_bytes() -> bytes:
    # An OLE2 compound file header: signature, minor/major version, byte order, sector shift.
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    return header.ljust(512, b"\x00") + bytes(512)


ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + bytes(120)


# --- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "name", "kind", "content_type"),
    [
        (pdf_bytes, "Rechnung 1042.pdf", "pdf", "application/pdf"),
        (lambda: zip_bytes({"a.txt": b"hallo"}), "fotos.zip", "zip", "application/zip"),
        (
            docx_bytes,
            "Bericht.docx",
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            xlsx_bytes,
            "Tabelle.xlsx",
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (xls_bytes, "Alt.xls", "xls", "application/vnd.ms-excel"),
        (jpeg_bytes, "Foto.JPG", "jpeg", "image/jpeg"),
        (jpeg_bytes, "foto.jpeg", "jpeg", "image/jpeg"),
        (png_bytes, "bild.png", "png", "image/png"),
    ],
)
def test_each_allowed_kind_is_stored_by_its_content(
    data_dir: Path, make, name: str, kind: str, content_type: str
) -> None:
    stored = store(data_dir, make(), name)

    assert (stored.kind, stored.content_type, stored.filename) == (kind, content_type, name)
    path = stored_path(data_dir / "uploads", stored.sha256)
    assert path == data_dir / "uploads" / stored.sha256[:2] / stored.sha256[2:4] / stored.sha256
    assert hashlib.sha256(path.read_bytes()).hexdigest() == stored.sha256
    assert path.stat().st_size == stored.size
    assert list((data_dir / "uploads" / "tmp").iterdir()) == []


def test_non_image_bytes_are_stored_unchanged(data_dir: Path) -> None:
    content = pdf_bytes()
    stored = store(data_dir, content, "rechnung.pdf")
    assert stored_path(data_dir / "uploads", stored.sha256).read_bytes() == content
    assert stored.size == len(content)


def test_empty_zip_archive_is_a_zip(data_dir: Path) -> None:
    empty = zip_bytes({})
    assert empty.startswith(b"PK\x05\x06")
    assert store(data_dir, empty, "leer.zip").kind == "zip"


def test_name_without_extension_gets_the_detected_one(data_dir: Path) -> None:
    assert store(data_dir, pdf_bytes(), "Rechnung").filename == "Rechnung.pdf"
    assert store(data_dir, jpeg_bytes(), "IMG 0042").filename == "IMG 0042.jpg"
    assert store(data_dir, docx_bytes(), "Angebot 12.03.2024").filename == (
        "Angebot 12.03.2024.docx"
    )


def test_jpg_and_jpeg_both_allow_jpeg(data_dir: Path) -> None:
    assert store(data_dir, jpeg_bytes(), "a.jpeg", upload_types=("jpg",)).kind == "jpeg"
    assert store(data_dir, jpeg_bytes(), "b.jpg", upload_types=("jpeg",)).kind == "jpeg"


def test_file_of_exactly_the_limit_is_accepted(data_dir: Path) -> None:
    content = pdf_bytes()
    assert store(data_dir, content, "genau.pdf", max_bytes=len(content)).size == len(content)


def test_reading_starts_at_the_current_position_and_uses_chunks(data_dir: Path) -> None:
    # Larger than one read chunk, as an attachment spooled to disk by Starlette would be.
    content = pdf_bytes() + b"%" + bytes(3 * 1024 * 1024)
    source = io.BytesIO(content)
    stored = store_upload(source, "gross.pdf", data_dir / "uploads", UPLOAD_TYPES, MAX_BYTES)
    assert stored.size == len(content)
    assert stored_path(data_dir / "uploads", stored.sha256).read_bytes() == content


# --- where and how often it is stored -------------------------------------------------------


def test_same_content_is_stored_once(data_dir: Path) -> None:
    content = pdf_bytes()
    first = store(data_dir, content, "rechnung.pdf")
    second = store(data_dir, content, "kopie der rechnung.pdf")

    assert first.sha256 == second.sha256 == hashlib.sha256(content).hexdigest()
    assert (first.filename, second.filename) == ("rechnung.pdf", "kopie der rechnung.pdf")
    assert stored_files(data_dir) == [stored_path(data_dir / "uploads", first.sha256)]


def test_stored_path_never_contains_the_uploaded_name(data_dir: Path) -> None:
    stored = store(data_dir, pdf_bytes(), "../../geheim-rechnung.pdf")
    path = stored_path(data_dir / "uploads", stored.sha256)

    assert path.exists()
    assert "geheim" not in str(path)
    assert path.is_relative_to(data_dir / "uploads")
    assert [path.name for path in stored_files(data_dir)] == [stored.sha256]
    assert stored.filename == "geheim-rechnung.pdf"


# --- refused: type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (ELF_BYTES, "rechnung.pdf"),
        (b"MZ\x90\x00" + bytes(60), "setup.exe"),
        (b"Hallo, anbei die Daten.\n", "notiz.txt"),
        (b"<html><script>alert(1)</script></html>", "seite.html"),
    ],
)
def test_unknown_content_is_refused_whatever_the_name(
    data_dir: Path, content: bytes, name: str
) -> None:
    message = refusal(data_dir, content, name)
    assert message == (
        f"{name}: files of this type are not allowed "
        "(allowed: pdf, zip, jpg, jpeg, png, docx, xlsx, xls)."
    )


def test_kind_missing_from_the_settings_is_refused(data_dir: Path) -> None:
    message = refusal(data_dir, png_bytes(), "bild.png", upload_types=("pdf", "gif"))
    assert message == "bild.png: files of this type are not allowed (allowed: pdf)."


@pytest.mark.parametrize(
    ("make", "name", "kind"),
    [
        (png_bytes, "rechnung.pdf", "PNG"),
        (pdf_bytes, "foto.jpg", "PDF"),
        (lambda: zip_bytes({"a.txt": b"hallo"}), "Bericht.docx", "ZIP"),
        (docx_bytes, "Tabelle.xlsx", "DOCX"),
        (docx_bytes, "Bericht.zip", "DOCX"),
        (xls_bytes, "Bericht.docx", "XLS"),
        (pdf_bytes, "rechnung.txt", "PDF"),
    ],
)
def test_content_disguised_by_its_name_is_refused(
    data_dir: Path, make, name: str, kind: str
) -> None:
    message = refusal(data_dir, make(), name)
    assert message == f"{name}: the content does not match the file name (the content is {kind})."


def test_browser_content_type_plays_no_part(data_dir: Path) -> None:
    # store_upload has no content type parameter at all; the stored type is the detected one.
    assert store(data_dir, png_bytes(), "bild").content_type == "image/png"


# --- refused: size --------------------------------------------------------------------------


def test_oversize_file_is_refused_and_leaves_nothing_behind(data_dir: Path) -> None:
    content = pdf_bytes() + bytes(5 * 1024 * 1024)
    message = refusal(data_dir, content, "scan.pdf", max_bytes=2 * 1024 * 1024)
    assert message == "scan.pdf is larger than the limit of 2 MB."


def test_oversize_reading_stops_soon_after_the_limit(data_dir: Path) -> None:
    source = io.BytesIO(pdf_bytes() + bytes(50 * 1024 * 1024))
    with pytest.raises(UploadRejected):
        store_upload(source, "riesig.pdf", data_dir / "uploads", UPLOAD_TYPES, 1024 * 1024)
    assert source.tell() <= 3 * 1024 * 1024
    assert_nothing_left(data_dir)


def test_limit_in_message_is_in_megabytes(data_dir: Path) -> None:
    message = refusal(data_dir, pdf_bytes() + bytes(600 * 1024), "klein.pdf", max_bytes=512 * 1024)
    assert message == "klein.pdf is larger than the limit of 0.5 MB."


def test_empty_file_is_refused(data_dir: Path) -> None:
    assert refusal(data_dir, b"", "leer.pdf") == "leer.pdf is empty."


# --- refused: archives ----------------------------------------------------------------------


def test_zip_bomb_is_refused(data_dir: Path) -> None:
    bomb = zip_bytes({"zeros.bin": bytes(8 * 1024 * 1024)})
    assert len(bomb) * 100 < 8 * 1024 * 1024  # the ratio is far above 100
    message = refusal(data_dir, bomb, "daten.zip")
    assert message == "daten.zip: the archive unpacks to too much data."


def test_docx_hiding_a_bomb_is_refused(data_dir: Path) -> None:
    document = zip_bytes(
        {
            "[Content_Types].xml": CONTENT_TYPES_XML,
            "word/document.xml": b"<w:document/>",
            "word/media/image1.bin": bytes(8 * 1024 * 1024),
        }
    )
    assert detect_kind_of(data_dir, document) == "docx"
    assert refusal(data_dir, document, "Bericht.docx") == (
        "Bericht.docx: the archive unpacks to too much data."
    )


def test_archive_unpacking_beyond_200_mb_is_refused(data_dir: Path) -> None:
    # Each entry alone is small; together they pass the 200 MB a customer's archive may hold.
    chunk = bytes(1000 * 1000)
    archive = zip_bytes({f"teil-{number}.bin": chunk for number in range(210)})
    assert (
        refusal(data_dir, archive, "viel.zip") == "viel.zip: the archive unpacks to too much data."
    )


def test_small_well_compressed_parts_are_no_bomb(data_dir: Path) -> None:
    # Office files hold small, repetitive XML parts that compress far better than 100:1.
    archive = zip_bytes({"leer.txt": bytes(100 * 1024), "b.txt": b"hallo"})
    assert store(data_dir, archive, "klein.zip").kind == "zip"


def test_archive_with_too_many_entries_is_refused(data_dir: Path) -> None:
    archive = zip_bytes({f"{number}.txt": b"" for number in range(10_001)})
    message = refusal(data_dir, archive, "viele.zip")
    assert message == "viele.zip: the archive contains more than 10,000 files."


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"PK\x03\x04" + b"\x14\x00 kaputt" * 20, "kaputt.zip"),
        (docx_bytes()[:-40], "abgeschnitten.docx"),
        (xlsx_bytes()[: len(xlsx_bytes()) // 2], "halb.xlsx"),
    ],
)
def test_corrupt_archive_is_refused(data_dir: Path, content: bytes, name: str) -> None:
    assert refusal(data_dir, content, name) == f"{name}: the archive is damaged."


# --- refused: images ------------------------------------------------------------------------


def test_image_pillow_cannot_read_is_refused(data_dir: Path) -> None:
    broken = png_bytes()[:60]
    message = refusal(data_dir, broken, "bild.png")
    assert message == "bild.png: the image is damaged or cannot be read."


def test_jpeg_signature_with_garbage_is_refused(data_dir: Path) -> None:
    message = refusal(data_dir, b"\xff\xd8\xff" + b"nichts" * 50, "foto.jpg")
    assert message == "foto.jpg: the image is damaged or cannot be read."


def test_decompression_bomb_image_is_refused(data_dir: Path) -> None:
    # 100 million pixels in a few kilobytes: more than Pillow's MAX_IMAGE_PIXELS.
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    assert buffer.tell() < 100 * 1024
    message = refusal(data_dir, buffer.getvalue(), "riesig.png")
    assert message == "riesig.png: the image has too many pixels."


# --- metadata -------------------------------------------------------------------------------


def test_jpeg_loses_exif_gps_comment_and_xmp(data_dir: Path) -> None:
    original = jpeg_bytes()
    with Image.open(io.BytesIO(original)) as before:
        assert before.getexif().get_ifd(GPS_IFD)[1] == "N"
        assert before.getexif()[MAKE] == "Canon"
        assert "comment" in before.info and "xmp" in before.info

    stored = store(data_dir, original, "urlaub.jpg")

    path = stored_path(data_dir / "uploads", stored.sha256)
    assert b"Canon" not in path.read_bytes() and b"Kunde 4711" not in path.read_bytes()
    with Image.open(path) as after:
        assert after.format == "JPEG"
        assert dict(after.getexif()) == {}
        assert after.getexif().get_ifd(GPS_IFD) == {}
        assert not {"exif", "comment", "xmp"} & set(after.info)
        assert after.size == (40, 20)


def test_jpeg_keeps_its_orientation_without_exif(data_dir: Path) -> None:
    # Orientation 6: the camera was turned; viewers rotate the 40x20 sensor image by 90 degrees.
    stored = store(data_dir, jpeg_bytes(size=(40, 20), orientation=6), "hochkant.jpg")
    with Image.open(stored_path(data_dir / "uploads", stored.sha256)) as after:
        assert after.size == (20, 40)
        assert ORIENTATION not in after.getexif()


def test_png_loses_exif_gps_and_text_chunks(data_dir: Path) -> None:
    original = png_bytes()
    with Image.open(io.BytesIO(original)) as before:
        assert before.getexif().get_ifd(GPS_IFD)[1] == "N"
        assert before.text["Author"] == "Kunde 4711"

    stored = store(data_dir, original, "screenshot.png")

    path = stored_path(data_dir / "uploads", stored.sha256)
    assert b"Canon" not in path.read_bytes() and b"Kunde 4711" not in path.read_bytes()
    with Image.open(path) as after:
        assert after.format == "PNG"
        assert dict(after.getexif()) == {}
        assert after.text == {}
        assert "exif" not in after.info
        assert after.getpixel((5, 5)) == (0, 128, 0)


def test_image_hash_is_of_the_cleaned_bytes(data_dir: Path) -> None:
    original = png_bytes()
    stored = store(data_dir, original, "bild.png")
    cleaned = stored_path(data_dir / "uploads", stored.sha256).read_bytes()
    assert (
        stored.sha256 == hashlib.sha256(cleaned).hexdigest() != hashlib.sha256(original).hexdigest()
    )
    assert stored.size == len(cleaned) < len(original)


def test_palette_png_keeps_its_transparency(data_dir: Path) -> None:
    image = Image.new("P", (10, 10), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=1)
    stored = store(data_dir, buffer.getvalue(), "logo.png")
    with Image.open(stored_path(data_dir / "uploads", stored.sha256)) as after:
        assert after.info.get("transparency") == 1


# --- names and kinds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("C:\\Users\\Kunde\\Desktop\\Rechnung.pdf", "Rechnung.pdf"),
        ("/var/www/../../root/.ssh/id_rsa", "id_rsa"),
        ("..", "datei"),
        ("", "datei"),
        ("   ", "datei"),
        ('"<>:|?*', "datei"),
        (".htaccess", "htaccess"),
        ("...versteckt.pdf", "versteckt.pdf"),
        ("Größe Übersicht.pdf", "Größe Übersicht.pdf"),
        ("Gro\u0308ße.pdf", "Größe.pdf"),
        ("日本語の請求書.pdf", "日本語の請求書.pdf"),
        ('rech"nung<1>.pdf', "rechnung1.pdf"),
        ("a:b|c?d*e.pdf", "abcde.pdf"),
        ("zeile\r\nSet-Cookie: x=1.pdf", "zeile Set-Cookie x=1.pdf"),
        ("nul\x00byte.pdf", "nulbyte.pdf"),
        ("tab\tund   leer  .pdf", "tab und leer.pdf"),
        ("rechnung\u202efdp.exe", "rechnungfdp.exe"),
        ("ende. . .", "ende"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_safe_filename_limits_length_and_keeps_the_extension() -> None:
    long_name = "Rechnung " + "ä" * 300 + ".pdf"
    safe = safe_filename(long_name)
    assert len(safe) == 120
    assert safe.startswith("Rechnung ä") and safe.endswith("ä.pdf")


def test_safe_filename_does_not_split_a_combined_letter() -> None:
    # "q" with a combining dot below has no precomposed form, so NFC keeps two code points.
    name = "q\u0323" * 70 + ".pdf"
    safe = safe_filename(name)
    assert len(safe) <= 120 and safe.endswith("q\u0323.pdf")


def test_allowed_kinds_maps_extensions_to_kinds() -> None:
    assert allowed_kinds(UPLOAD_TYPES) == {"pdf", "zip", "jpeg", "png", "docx", "xlsx", "xls"}
    assert allowed_kinds(("JPG", ".png", "gif", "exe")) == {"jpeg", "png"}
    assert allowed_kinds(()) == set()


def detect_kind_of(directory: Path, content: bytes) -> str | None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "probe"
    path.write_bytes(content)
    try:
        return detect_kind(path)
    finally:
        path.unlink()


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (pdf_bytes, "pdf"),
        (png_bytes, "png"),
        (jpeg_bytes, "jpeg"),
        (xls_bytes, "xls"),
        (docx_bytes, "docx"),
        (xlsx_bytes, "xlsx"),
        (lambda: zip_bytes({"word/document.xml": b"<w/>"}), "zip"),
        (lambda: zip_bytes({}), "zip"),
        (lambda: ELF_BYTES, None),
        (lambda: b"GIF89a" + bytes(20), None),
        (lambda: b"x", None),
    ],
)
def test_detect_kind_reads_the_content(tmp_path: Path, make, kind: str | None) -> None:
    assert detect_kind_of(tmp_path, make()) == kind
