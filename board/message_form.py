"""The message form that customers, guests and staff send: a text and up to ten files.

Shared by the inbox, the contact form, guest replies and the staff queue. The files are
checked by content here and wait outside the store: the writer of their rows keeps them
(board.uploads.keep), and board.web.DiscardUnkeptUploads removes what nobody kept.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from board.i18n import gettext as _
from board.uploads import StoredFile, UploadRejected, check_upload
from board.web import field, read_form, remember_checked, settings_of

BODY_MAX = 60_000
MAX_FILES = 10


async def read_message_form(request: Request) -> tuple[FormData, str, list[StoredFile], dict]:
    """The body and the checked files of a message form, or the errors that refuse it.
    The files enter the store only with the rows that name them (board.uploads.keep)."""
    form = await read_form(request, max_files=MAX_FILES * 3)
    try:
        return await _check_message_files(request, form)
    finally:
        await form.close()  # the spooled uploads; the checked copies wait in the store's tmp


async def read_refused_form(request: Request) -> FormData:
    """A message form refused by a limit, read for its text only: no file is stored."""
    form = await read_form(request, max_files=MAX_FILES * 3)
    await form.close()
    return form


async def _check_message_files(
    request: Request, form: FormData
) -> tuple[FormData, str, list[StoredFile], dict]:
    body = field(form, "body", BODY_MAX)
    errors: dict[str, str] = {}
    uploads = [
        upload
        for upload in form.getlist("attachments")
        if isinstance(upload, UploadFile) and upload.filename
    ]
    stored: list[StoredFile] = []
    if len(uploads) > MAX_FILES:
        errors["attachments"] = _(
            "Please attach at most %(count)s files to one message.", count=MAX_FILES
        )
        return form, body, stored, errors
    settings = settings_of(request)
    problems = []
    for upload in uploads:
        try:
            stored.append(
                await run_in_threadpool(
                    check_upload,
                    upload.file,
                    upload.filename,
                    settings.upload_dir,
                    settings.upload_types,
                    settings.upload_max_mb * 1024 * 1024,
                )
            )
        except UploadRejected as rejected:
            problems.append(rejected.message)
    remember_checked(request, stored)  # kept by the writer of their rows, else discarded
    if problems:
        errors["attachments"] = " ".join(problems)
    if not body:
        errors["body"] = _("Please write your message.")
    return form, body, stored, errors
