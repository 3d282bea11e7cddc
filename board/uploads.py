"""Attachment validation and storage: size limit, type by content, metadata-free images, by hash.

Also how a stored file is named when it is downloaded (`content_disposition`)."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO
from urllib.parse import quote

import regex
from babel.numbers import format_decimal
from PIL import Image, ImageOps

from board.i18n import current_locale, format_number
from board.i18n import gettext as _

CHUNK_SIZE = 1024 * 1024
MIB = 1024 * 1024
FALLBACK_FILENAME = "datei"
FILENAME_MAX_LENGTH = 120

# Zip limits, checked on the central directory without extracting anything.
ZIP_MAX_ENTRIES = 10_000
ZIP_MAX_TOTAL_BYTES = 200 * MIB
ZIP_MAX_RATIO = 100
# Below this size an entry cannot expand into anything harmful (the total limit still counts it),
# and small repetitive XML parts of genuine office files easily compress better than 100:1.
ZIP_RATIO_MIN_ENTRY_BYTES = MIB
# Every central directory record starts with this; counting them bounds the entries that
# zipfile would build an object for (300,000 of them fit in 20 MB and take seconds).
_ZIP_CENTRAL_RECORD = b"PK\x01\x02"

# Pixels a picture may have, judged from its header before anything is decoded: a 12-bit
# PNG header can claim a picture that takes gigabytes of memory. 50 megapixels holds the
# photos of current phones; decoding one takes at most 200 MB (4 bytes a pixel).
IMAGE_MAX_PIXELS = 50_000_000

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "zip": "application/zip",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
}
# Extension a stored file gets when its name has none.
KIND_EXTENSIONS = {kind: kind for kind in CONTENT_TYPES} | {"jpeg": "jpg"}
# What an extension in a file name (or in settings.upload_types) promises about the content.
EXTENSION_KINDS = {kind: kind for kind in CONTENT_TYPES} | {"jpg": "jpeg"}
ZIP_KINDS = frozenset({"zip", "docx", "xlsx"})
IMAGE_FORMATS = {"jpeg": "JPEG", "png": "PNG"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive

# Path separators of every platform, and characters that break headers or Windows file names.
_UNSAFE_CHARACTERS = regex.compile(r'[/\\"<>:|?*]')
_WHITESPACE = regex.compile(r"\s+")
_GRAPHEME = regex.compile(r"\X")
_SHA256_HEX = regex.compile(r"[0-9a-f]{64}")
# "Rechnung 12.03.2024" has no extension; "bericht.docx" and "scan.JPG" have one.
_EXTENSION = regex.compile(r"(?i)^[a-z0-9]{1,5}$")


@dataclass(frozen=True)
class StoredFile:
    sha256: str  # hex digest of the stored (cleaned) bytes
    size: int  # bytes stored
    content_type: str  # from the detected type, never the browser's
    filename: str  # safe display name, extension matching the detected type
    kind: str  # detected type: "pdf", "zip", "jpeg", "png", "docx", "xlsx", "xls"
    # Checked but not yet kept: the cleaned bytes wait here, in the store's tmp folder,
    # until `keep` moves them to `destination` beside their attachment row.
    waiting: Path | None = None
    destination: Path | None = None


class UploadRejected(Exception):
    """An upload the site refuses; `message` is translated and names the file."""

    def __init__(self, filename: str, message: str):
        super().__init__(message)
        self.filename = filename
        self.message = message


def safe_filename(name: str) -> str:
    """A display name that cannot traverse paths, break headers or hide its real extension."""
    name = unicodedata.normalize("NFC", name)
    # Both separators: a Windows browser may send "C:\\Users\\x\\bild.png".
    name = regex.split(r"[/\\]", name)[-1]
    # Category C: control characters (CR, LF, NUL) and invisible format characters such as the
    # right-to-left override, which makes "rechnung\u202efdp.exe" look like a PDF.
    name = "".join(
        " " if char.isspace() else char
        for char in name
        if char.isspace() or not unicodedata.category(char).startswith("C")
    )
    name = _UNSAFE_CHARACTERS.sub("", name)
    name = _WHITESPACE.sub(" ", name).strip()
    # No hidden files; Windows drops trailing dots and spaces on its own.
    name = name.lstrip(". ").rstrip(". ")
    stem, extension = _split_extension(name)
    if extension is not None:
        stem = _cut(stem.rstrip(), FILENAME_MAX_LENGTH - len(extension) - 1).rstrip(". ")
        name = f"{stem}.{extension}" if stem else extension
    else:
        name = _cut(name, FILENAME_MAX_LENGTH).rstrip(". ")
    return name or FALLBACK_FILENAME


def _split_extension(name: str) -> tuple[str, str | None]:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or not _EXTENSION.match(extension) or extension.isdigit():
        return name, None
    return stem, extension


def _cut(text: str, length: int) -> str:
    """At most `length` characters, never splitting a letter from its combining accents."""
    if len(text) <= length:
        return text
    kept = ""
    for grapheme in _GRAPHEME.findall(text):
        if len(kept) + len(grapheme) > length:
            break
        kept += grapheme
    return kept


def allowed_kinds(upload_types: tuple[str, ...]) -> set[str]:
    """The detectable kinds that settings.upload_types permits; unknown extensions are ignored."""
    return {
        EXTENSION_KINDS[extension.lower().lstrip(".")]
        for extension in upload_types
        if extension.lower().lstrip(".") in EXTENSION_KINDS
    }


def detect_kind(path: Path) -> str | None:
    """The file's type judged by its bytes alone; None for anything the site does not accept."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(_OLE2_SIGNATURE):
        return "xls"
    if head.startswith(_ZIP_SIGNATURES):
        entries = _zip_entries(path)
        names = {entry.filename for entry in entries or ()}
        if "[Content_Types].xml" in names:
            if "word/document.xml" in names:
                return "docx"
            if "xl/workbook.xml" in names:
                return "xlsx"
        return "zip"
    return None


def _zip_entries(path: Path) -> list[zipfile.ZipInfo] | None:
    """The central directory, or None when it cannot be read or holds too many entries to
    look at; nothing is decompressed."""
    if _central_records(path) > ZIP_MAX_ENTRIES:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return None


def _central_records(path: Path) -> int:
    """How often a central directory record's signature occurs in the file: at least the
    number of entries zipfile would read (each must start with it), found in milliseconds."""
    count = 0
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            # The three bytes before the chunk: a signature may straddle two chunks.
            count += (tail + chunk).count(_ZIP_CENTRAL_RECORD)
            tail = chunk[-3:]
    return count


def stored_path(upload_dir: Path, sha256: str) -> Path:
    """Where content with this hash lives in `upload_dir` (Settings.upload_dir); two levels
    of folders keep directories small."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")  # nothing else may become a path here
    return upload_dir / sha256[:2] / sha256[2:4] / sha256


def check_upload(
    source: BinaryIO,
    original_name: str,
    upload_dir: Path,
    upload_types: tuple[str, ...],
    max_bytes: int,
) -> StoredFile:
    """Check an uploaded file and prepare it for the store; raises UploadRejected.

    Nothing enters the store yet: the cleaned bytes wait in its tmp folder until the
    writer that inserts the attachment row calls `keep`, and `discard` removes them from
    a request that was refused. Synchronous (file I/O, zip and image decoding): call it
    through run_in_threadpool. Reads `source` from its current position to the end.
    """
    filename = safe_filename(original_name)
    # Beside the files: the final rename stays on one file system, shared storage too.
    temp_dir = upload_dir / "tmp"
    temp_dir.mkdir(parents=True, exist_ok=True)
    # Temp names are random: the uploaded name never reaches the file system.
    handle, raw_name = tempfile.mkstemp(dir=temp_dir, prefix="upload-", suffix=".part")
    raw_path = Path(raw_name)
    cleaned_path: Path | None = None
    try:
        with os.fdopen(handle, "wb") as target:
            size = _copy_limited(source, target, max_bytes, filename)
        if size == 0:
            raise UploadRejected(filename, _("%(filename)s is empty.", filename=filename))
        kind = _checked_kind(raw_path, filename, upload_types)
        filename = _name_for_kind(filename, kind)
        waiting = raw_path
        if kind in IMAGE_FORMATS:
            handle, cleaned_name = tempfile.mkstemp(dir=temp_dir, prefix="clean-", suffix=".part")
            os.close(handle)
            cleaned_path = Path(cleaned_name)
            _strip_image_metadata(raw_path, cleaned_path, kind, filename)
            raw_path.unlink()
            waiting = cleaned_path
        sha256, size = _hash_file(waiting)
    except BaseException:
        raw_path.unlink(missing_ok=True)
        if cleaned_path is not None:
            cleaned_path.unlink(missing_ok=True)
        raise
    return StoredFile(
        sha256=sha256,
        size=size,
        content_type=CONTENT_TYPES[kind],
        filename=filename,
        kind=kind,
        waiting=waiting,
        destination=stored_path(upload_dir, sha256),
    )


def keep(files: Iterable[StoredFile]) -> None:
    """Moves checked files into the store; called by the writer of their attachment rows,
    inside its transaction. Same content, same path: content already stored stays, and its
    time is renewed, so that the sweep of unreferenced files (board.maintenance) sees it
    in use."""
    for file in files:
        if file.waiting is None or file.destination is None:
            continue
        if file.destination.exists():
            os.utime(file.destination)
            file.waiting.unlink(missing_ok=True)
            continue
        file.destination.parent.mkdir(parents=True, exist_ok=True)
        # Atomic: a file in the store is always whole.
        os.replace(file.waiting, file.destination)


def discard(files: Iterable[StoredFile]) -> None:
    """Removes what a refused request had checked; files already kept are not touched."""
    for file in files:
        if file.waiting is not None:
            file.waiting.unlink(missing_ok=True)


def store_upload(
    source: BinaryIO,
    original_name: str,
    upload_dir: Path,
    upload_types: tuple[str, ...],
    max_bytes: int,
) -> StoredFile:
    """check_upload and keep in one: for commands that write the rows right after (a
    crash in between leaves an unreferenced file, which the sweep removes)."""
    file = check_upload(source, original_name, upload_dir, upload_types, max_bytes)
    keep([file])
    return file


def old_leftovers(upload_dir: Path, oldest: float) -> int:
    """Removes checked files of requests that ended without removing them (a killed
    process) from the tmp folder, if older than `oldest` (a time.time()); returns how many."""
    removed = 0
    for leftover in (upload_dir / "tmp").glob("*.part"):
        if _older_than(leftover, oldest):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def old_stored_files(upload_dir: Path, prefix: str, oldest: float) -> list[Path]:
    """The stored files under one of the 256 top folders (`prefix`, two hex digits) older
    than `oldest`: the sweep goes folder by folder, so its memory stays small."""
    return [
        path
        for path in (upload_dir / prefix).glob("??/*")
        if _SHA256_HEX.fullmatch(path.name) and _older_than(path, oldest)
    ]


def remove_if_old(paths: Iterable[Path], oldest: float) -> int:
    """Deletes the files still older than `oldest`; a writer that kept the same content
    since the sweep looked renewed its time (`keep`), and it stays."""
    removed = 0
    for path in paths:
        if _older_than(path, oldest):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _older_than(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime < moment
    except FileNotFoundError:
        return False


def _copy_limited(source: BinaryIO, target: BinaryIO, max_bytes: int, filename: str) -> int:
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        size += len(chunk)
        if size > max_bytes:
            raise UploadRejected(
                filename,
                _(
                    "%(filename)s is larger than the limit of %(limit)s MB.",
                    filename=filename,
                    limit=format_decimal(max_bytes / MIB, "#,##0.#", locale=current_locale.get()),
                ),
            )
        target.write(chunk)
    return size


def _checked_kind(path: Path, filename: str, upload_types: tuple[str, ...]) -> str:
    """The detected kind, once it is permitted, an intact archive and what the name says."""
    kind = detect_kind(path)
    if kind in ZIP_KINDS:
        # Before the name check: a damaged .docx is reported as damaged, not as a disguised zip.
        _check_archive(path, filename)
    if kind is None or kind not in allowed_kinds(upload_types):
        permitted = ", ".join(
            extension for extension in upload_types if extension.lower() in EXTENSION_KINDS
        )
        raise UploadRejected(
            filename,
            _(
                "%(filename)s: files of this type are not allowed (allowed: %(types)s).",
                filename=filename,
                types=permitted,
            ),
        )
    _stem, extension = _split_extension(filename)
    if extension is not None and EXTENSION_KINDS.get(extension.lower()) != kind:
        raise UploadRejected(
            filename,
            _(
                "%(filename)s: the content does not match the file name (the content is %(kind)s).",
                filename=filename,
                kind=kind.upper(),
            ),
        )
    return kind


def _name_for_kind(filename: str, kind: str) -> str:
    """A name without an extension gets the detected one; a matching one is kept as typed."""
    _stem, extension = _split_extension(filename)
    if extension is not None:
        return filename
    suffix = "." + KIND_EXTENSIONS[kind]
    return _cut(filename, FILENAME_MAX_LENGTH - len(suffix)) + suffix


def _check_archive(path: Path, filename: str) -> None:
    # Counted before zipfile reads the directory: that read costs memory and time per entry.
    if _central_records(path) > ZIP_MAX_ENTRIES:
        raise UploadRejected(
            filename,
            _(
                "%(filename)s: the archive contains more than %(count)s files.",
                filename=filename,
                count=format_number(ZIP_MAX_ENTRIES),
            ),
        )
    entries = _zip_entries(path)
    if entries is None:
        raise UploadRejected(
            filename, _("%(filename)s: the archive is damaged.", filename=filename)
        )
    # Whoever unpacks it later must not get files written outside the folder they chose
    # ("zip slip"), nor a link that points there.
    if any(_escapes_folder(entry) for entry in entries):
        raise UploadRejected(
            filename,
            _("%(filename)s: the archive contains a file with an unsafe path.", filename=filename),
        )
    total = sum(entry.file_size for entry in entries)
    # A zip bomb: a few kilobytes that unpack to gigabytes for whoever opens them later.
    bomb = total > ZIP_MAX_TOTAL_BYTES or any(
        entry.file_size >= ZIP_RATIO_MIN_ENTRY_BYTES
        and entry.file_size > ZIP_MAX_RATIO * entry.compress_size
        for entry in entries
    )
    if bomb:
        raise UploadRejected(
            filename,
            _("%(filename)s: the archive unpacks to too much data.", filename=filename),
        )


def _escapes_folder(entry: zipfile.ZipInfo) -> bool:
    """An absolute name, a drive, a `..` step (with either separator) or a symbolic link."""
    name = entry.filename
    windows = PureWindowsPath(name)
    if PurePosixPath(name).is_absolute() or windows.drive or windows.root:
        return True
    if ".." in regex.split(r"[/\\]", name):
        return True
    return stat.S_ISLNK(entry.external_attr >> 16)  # Unix mode bits, as unzip reads them


def _strip_image_metadata(source: Path, target: Path, kind: str, filename: str) -> None:
    """Re-encode the picture upright without EXIF (GPS, camera), XMP, comments or text chunks."""
    image_format = IMAGE_FORMATS[kind]
    try:
        # Only the detected format's decoder: Pillow must not guess another one.
        with Image.open(source, formats=[image_format]) as image:
            # Image.open reads only the header; refuse before decoding. Pillow itself warns
            # (an error under pytest) or raises beyond its own, higher limit: caught below.
            if image.width * image.height > IMAGE_MAX_PIXELS:
                raise Image.DecompressionBombError
            upright = ImageOps.exif_transpose(image)
        # Save reads some metadata (JPEG comments, PNG colour profile) from info: keep only
        # what the picture needs to look the same.
        upright.info = {
            key: upright.info[key] for key in ("icc_profile", "transparency") if key in upright.info
        }
        options = {"quality": 90} if image_format == "JPEG" else {}
        upright.save(target, format=image_format, **options)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRejected(
            filename, _("%(filename)s: the image has too many pixels.", filename=filename)
        ) from None
    # Hostile or truncated images make Pillow's decoders fail in many ways.
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error):
        raise UploadRejected(
            filename,
            _("%(filename)s: the image is damaged or cannot be read.", filename=filename),
        ) from None


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def content_disposition(filename: str, inline: bool) -> str:
    """The Content-Disposition header for a download, as RFC 6266 and 5987 describe it.

    `filename*` carries the real name in UTF-8; `filename` an ASCII stand-in for old
    clients ("Bestätigung.pdf" becomes "Bestatigung.pdf"). Neither can break the header.
    """
    name = safe_filename(filename)  # again: no CR, LF, quotes or separators, whatever is stored
    disposition = "inline" if inline else "attachment"
    fallback = _ascii_filename(name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _ascii_filename(name: str) -> str:
    """Accents dropped from their letters, other non-ASCII characters left out."""
    stem, extension = _split_extension(name)
    ascii_stem = _ascii(stem).lstrip(". ")
    if not ascii_stem.strip(" ._-"):  # nothing readable was left of the name itself
        ascii_stem = FALLBACK_FILENAME
    return f"{ascii_stem}.{_ascii(extension)}" if extension else ascii_stem


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return _WHITESPACE.sub(" ", decomposed.encode("ascii", "ignore").decode("ascii")).strip()
