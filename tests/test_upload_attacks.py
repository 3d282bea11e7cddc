"""Hostile uploads and downloads: archives, pixel floods, form floods, headers, stored paths.

Each test here guards one protection; it fails when that protection is taken away.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from board.db import attachments, sync_engine
from board.i18n import current_locale
from board.uploads import content_disposition, stored_path
from tests.conftest import csrf_from
from tests.test_inbox import PDF, open_conversation, png_bytes, rows, write
from tests.test_uploads import CONTENT_TYPES_XML, refusal, store, zip_bytes


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    token = current_locale.set("en")
    yield
    current_locale.reset(token)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


# --- archives: checked on the central directory, nothing extracted --------------------------


def zip_with(entries: list[zipfile.ZipInfo | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            archive.writestr(entry, b"inhalt")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "entry",
    [
        "../../home/kunde/.bashrc",
        "fotos/../../../etc/cron.d/job",
        "/etc/passwd",
        "..\\..\\Windows\\System32\\evil.dll",
        "C:\\Users\\Public\\evil.exe",
        "C:/Users/Public/evil.exe",
        "\\\\server\\share\\evil.exe",
        "fotos/..",
    ],
)
def test_archive_entry_escaping_its_folder_is_refused(data_dir, entry) -> None:
    archive = zip_with(["fotos/urlaub.txt", entry])
    assert refusal(data_dir, archive, "fotos.zip") == (
        "fotos.zip: the archive contains a file with an unsafe path."
    )


def test_office_file_with_an_escaping_entry_is_refused(data_dir) -> None:
    document = zip_bytes(
        {
            "[Content_Types].xml": CONTENT_TYPES_XML,
            "word/document.xml": b"<w:document/>",
            "../../word/evil.xml": b"<x/>",
        }
    )
    assert refusal(data_dir, document, "Bericht.docx") == (
        "Bericht.docx: the archive contains a file with an unsafe path."
    )


def test_archive_with_a_symbolic_link_is_refused(data_dir) -> None:
    link = zipfile.ZipInfo("fotos/ssh")
    link.create_system = 3  # Unix: unzip honours the mode bits below
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = zip_with(["fotos/urlaub.txt", link])
    assert refusal(data_dir, archive, "fotos.zip") == (
        "fotos.zip: the archive contains a file with an unsafe path."
    )


def test_names_with_dots_inside_are_no_escape(data_dir) -> None:
    archive = zip_with(["notizen..txt", "v1..2/liste.txt", ".versteckt/a.txt", "a/b/c.txt"])
    assert store(data_dir, archive, "ordner.zip").kind == "zip"


def test_entry_count_is_judged_before_zipfile_reads_the_directory(data_dir) -> None:
    # 10,002 entries, the first one's directory record broken: zipfile cannot read the
    # directory at all. Refused for its count all the same, so the count did not wait for
    # zipfile, which spends seconds and hundreds of megabytes on 300,000 entries.
    archive = zip_bytes({f"{number}.txt": b"" for number in range(10_002)})
    directory = archive.index(b"PK\x01\x02")
    archive = archive[:directory] + b"PK\x01\x00" + archive[directory + 4 :]
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(archive))
    assert refusal(data_dir, archive, "viele.zip") == (
        "viele.zip: the archive contains more than 10,000 files."
    )


# --- images: dimensions judged from the header, before any decoding --------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a huge picture, followed by almost no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(bytes(64)))
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A JPEG start-of-frame for a huge picture, and no scan at all."""
    frame = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", 2 + len(jfif))
        + jfif
        + b"\xff\xc0"
        + struct.pack(">H", 2 + len(frame))
        + frame
        + b"\xff\xd9"
    )


@pytest.mark.parametrize(
    ("make", "name"), [(png_claiming, "flut.png"), (jpeg_claiming, "flut.jpg")]
)
def test_pixel_flood_is_refused_from_the_header(data_dir, make, name) -> None:
    # 64 megapixels in under 100 bytes: below Pillow's own limit, above the site's. Had the
    # picture been decoded, the missing pixel data would report it as damaged instead.
    flood = make(8000, 8000)
    assert len(flood) < 100
    assert refusal(data_dir, flood, name) == f"{name}: the image has too many pixels."


@pytest.mark.parametrize(
    ("make", "name"), [(png_claiming, "leer.png"), (jpeg_claiming, "leer.jpg")]
)
def test_a_picture_within_the_limit_is_decoded(data_dir, make, name) -> None:
    # The same lie at 16 megapixels is decoded, and found to hold no pixels.
    assert refusal(data_dir, make(4000, 4000), name) == (
        f"{name}: the image is damaged or cannot be read."
    )


# --- stored files: only the hash names a path -------------------------------------------------


@pytest.mark.parametrize("value", ["../../board.db", "ab/../../x", "A" * 64, ""])
def test_stored_path_takes_nothing_but_a_sha256(tmp_path, value) -> None:
    with pytest.raises(ValueError):
        stored_path(tmp_path, value)


def test_stored_files_are_not_under_static_or_any_other_url(people, settings, client) -> None:
    erika = people.customer()
    number = open_conversation(erika, "Beleg", [("beleg.pdf", PDF, "application/pdf")])
    [(attachment_id, sha256)] = rows(settings, sa.select(attachments.c.id, attachments.c.sha256))
    stored = stored_path(settings.upload_dir, sha256)
    assert stored.read_bytes() == PDF
    static_dir = settings.data_dir.parent.parent / "static"  # anything but the data folder
    assert not stored.resolve().is_relative_to(static_dir.resolve())
    shard = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
    for path in (
        f"/static/{shard}",
        f"/static/uploads/{shard}",
        f"/static/../data/uploads/{shard}",
        f"/static/%2e%2e/%2e%2e/data/uploads/{shard}",
        f"/uploads/{shard}",
        f"/attachments/{sha256}/beleg.pdf",
    ):
        response = erika.get(path)
        assert response.status_code == 404, path
        assert response.content != PDF
    assert erika.get(f"/inbox/{number}").status_code == 200


@pytest.mark.parametrize(
    "tail",
    ["..%2F..%2Fboard.db", "%2e%2e%2f%2e%2e%2fsecret_key", "..\\..\\board.db", "beleg.pdf%00.db"],
)
def test_the_download_name_in_the_url_reaches_no_file(people, settings, tail) -> None:
    # The id alone picks the file; whatever follows it is only the name a browser saves.
    erika = people.customer()
    open_conversation(erika, "Beleg", [("beleg.pdf", PDF, "application/pdf")])
    [attachment_id] = rows(settings, sa.select(attachments.c.id))[0]
    response = erika.get(f"/attachments/{attachment_id}/{tail}")
    # An encoded slash makes it no route at all (404); otherwise it is the PDF itself.
    assert (response.status_code, response.content) == (200, PDF) or response.status_code == 404
    assert not response.content.startswith(b"SQLite format")
    assert erika.get(f"/attachments/{tail}").status_code == 404
    assert erika.get(f"/attachments/{attachment_id}/x/{tail}").status_code == 404


# --- downloads: never run in the browser, names encoded as RFC 6266 says ----------------------


def set_stored(settings, **values) -> None:
    """As an old row or an importer's bug could have left it: the route must not trust it."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(sa.update(attachments).values(**values))
    engine.dispose()


def download(person, settings):
    [attachment_id] = rows(settings, sa.select(attachments.c.id))[0]
    return person.get(f"/attachments/{attachment_id}/datei")


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "image/svg+xml", "application/javascript", "text/xml", "application/xhtml+xml"],
)
def test_no_runnable_type_is_ever_served_inline(people, settings, content_type) -> None:
    erika = people.customer()
    open_conversation(erika, "Beleg", [("beleg.pdf", PDF, "application/pdf")])
    set_stored(settings, content_type=content_type, filename="seite.html")
    response = download(erika, settings)
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp


def test_pictures_are_inline_but_sandboxed(people, settings) -> None:
    erika = people.customer()
    open_conversation(erika, "Foto", [("foto.png", png_bytes(), "image/png")])
    response = download(erika, settings)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("inline;")
    assert "sandbox" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]  # not the page CSP


def test_download_name_has_an_ascii_fallback_and_the_utf8_name(people, settings) -> None:
    erika = people.customer()
    name = "Bestätigung März 2026 – Größe.pdf"
    open_conversation(erika, "Beleg", [(name, PDF, "application/pdf")])
    header = download(erika, settings).headers["content-disposition"]
    assert header == (
        'attachment; filename="Bestatigung Marz 2026 Groe.pdf"; '
        "filename*=UTF-8''Best%C3%A4tigung%20M%C3%A4rz%202026%20%E2%80%93%20Gr%C3%B6%C3%9Fe.pdf"
    )
    assert header.isascii()
    assert unquote(header.split("UTF-8''")[1]) == name


def test_a_stored_name_cannot_break_the_header(people, settings) -> None:
    erika = people.customer()
    open_conversation(erika, "Beleg", [("beleg.pdf", PDF, "application/pdf")])
    set_stored(settings, filename='x"\r\nSet-Cookie: board_session=gestohlen\r\n\r\n<b>.pdf')
    response = download(erika, settings)
    assert response.status_code == 200 and response.content == PDF
    header = response.headers["content-disposition"]
    assert "\r" not in header and "\n" not in header and header.count('"') == 2
    assert "board_session=gestohlen" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ("日本語.pdf", "datei.pdf"),
        ("Ωμέγα", "datei"),
        ("Ärger.PDF", "Arger.PDF"),
        ("a\tb\x00c.pdf", "a bc.pdf"),
        ('sag "hallo".pdf', "sag hallo.pdf"),
    ],
)
def test_content_disposition_fallback(name, fallback) -> None:
    header = content_disposition(name, inline=False)
    assert header.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    assert header.isascii() and "\r" not in header and "\n" not in header


# --- forms: floods of fields, files and bytes are refused while being read --------------------


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "grenze") -> bytes:
    """A multipart/form-data body: (field name, file name or None, value)."""
    out = bytearray()
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def post_multipart(person, path: str, parts, form_page: str = "/"):
    token = csrf_from(person.get(form_page).text)
    body = multipart([("csrf_token", None, token.encode()), *parts])
    return person.client.post(
        path, content=body, headers={"content-type": "multipart/form-data; boundary=grenze"}
    )


def test_fifty_fields_are_read_and_the_fifty_first_refuses_the_form(people) -> None:
    erika = people.customer()
    fields = [(f"feld{number}", None, b"x") for number in range(49)]  # with the token: 50
    assert post_multipart(erika, "/inbox/read-all", fields).status_code == 303
    one_more = [*fields, ("feld49", None, b"x")]
    assert post_multipart(erika, "/inbox/read-all", one_more).status_code == 400


def test_a_file_sent_to_a_form_without_uploads_is_refused(people, settings) -> None:
    erika = people.customer()
    response = post_multipart(erika, "/inbox/read-all", [("datei", "beleg.pdf", PDF)])
    assert response.status_code == 400


def test_a_flood_of_files_is_refused_before_any_is_stored(people, settings) -> None:
    erika = people.customer()
    files = [("attachments", f"beleg{number}.pdf", PDF) for number in range(31)]
    response = post_multipart(erika, "/inbox/new", [("body", None, b"Viele"), *files])
    assert response.status_code == 400
    uploads = settings.data_dir / "uploads"
    assert not uploads.exists() or not [path for path in uploads.rglob("*") if path.is_file()]


def test_a_text_field_beyond_a_megabyte_is_refused(people) -> None:
    erika = people.customer()
    response = post_multipart(erika, "/inbox/read-all", [("body", None, b"x" * (1024 * 1024 + 1))])
    assert response.status_code == 400


def asgi_post(app, client, path: str, content_type: str, chunks, content_length: int | None):
    """Sends a body to the running app chunk by chunk; returns the status and how many
    chunks the app had asked for when it answered."""
    asked = 0
    statuses: list[int] = []
    body_chunks = iter(chunks)

    async def receive():
        nonlocal asked
        asked += 1
        chunk = next(body_chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    headers = [(b"content-type", content_type.encode()), (b"host", b"testserver")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run():
        await app(scope, receive, send)

    client.portal.call(run)
    return statuses[0], asked


def endless_fields():
    part = b'--grenze\r\nContent-Disposition: form-data; name="feld"\r\n\r\nx\r\n'
    while True:
        yield part * 1000  # 1,000 fields, 60 kB


def endless_files():
    part = b'--grenze\r\nContent-Disposition: form-data; name="f"; filename="a.pdf"\r\n\r\nx\r\n'
    while True:
        yield part * 1000


@pytest.mark.parametrize("flood", [endless_fields, endless_files])
def test_an_endless_flood_of_parts_is_refused_within_the_first_chunk(app, client, flood) -> None:
    status, asked = asgi_post(
        app, client, "/login", "multipart/form-data; boundary=grenze", flood(), None
    )
    assert status == 400 and asked == 1


def test_a_large_urlencoded_body_is_refused_before_it_is_read(app, client) -> None:
    # 3 MB of text fields: more than any form without files takes, far less than uploads.
    chunks = [b"body=" + b"x" * (64 * 1024 - 5)] + [b"x" * (64 * 1024)] * 47
    size = sum(map(len, chunks))
    status, asked = asgi_post(
        app, client, "/login", "application/x-www-form-urlencoded", chunks, size
    )
    assert status == 413 and asked == 0  # the declared length refused it


def megabyte_fields():
    """URL-encoded fields just under the per-field limit, sent without a length."""
    chunk = 64 * 1024
    for number in range(50):
        yield f"feld{number}=".encode()
        for _ in range(15):
            yield b"x" * chunk
        yield b"x" * (chunk - 100) + b"&"


def test_an_undeclared_urlencoded_body_stops_at_two_megabytes(app, client) -> None:
    # Each field is within its limit, and so is their number: the body as a whole is not.
    status, asked = asgi_post(
        app, client, "/login", "application/x-www-form-urlencoded", megabyte_fields(), None
    )
    assert status == 413 and asked <= 2 * (1 + 15 + 1) + 2


def test_a_message_with_attachments_still_fits(people, settings) -> None:
    # The text limit is for bodies without files: a message with two 1 MB files passes.
    erika = people.customer()
    big = PDF + b"%" + bytes(1024 * 1024)
    response = write(
        erika,
        "Zwei Belege",
        [("a.pdf", big, "application/pdf"), ("b.pdf", big + b"1", "application/pdf")],
    )
    assert response.status_code == 303, response.text[:500]
