"""What reaches the file store: the files of accepted messages only, moved there with
the rows that name them; a refused request leaves nothing, and the maintenance sweep
removes files that no attachment names a day later."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from board import maintenance
from board.uploads import stored_path
from tests.conftest import csrf_from, submit
from tests.test_inbox import PDF, guest_writes, open_conversation, png_bytes


def stored(settings) -> list[Path]:
    """Everything in the store and in its tmp folder."""
    return sorted(path for path in settings.upload_dir.rglob("*") if path.is_file())


def with_files(person, path: str, data: dict, form_page: str):
    page = person.get(form_page).text
    files = [
        ("attachments", ("rechnung.pdf", PDF, "application/pdf")),
        ("attachments", ("foto.png", png_bytes(), "image/png")),
    ]
    return person.post(path, data={"csrf_token": csrf_from(page), **data}, files=files)


def test_a_refused_request_stores_no_file(client, new_client, people, settings):
    erika = people.customer()
    max_ = people.customer("Max Muster")
    staff = people.staff()
    number = open_conversation(erika, "Meine Frage ohne Datei")
    spam_link = guest_writes(new_client(), "Werbung", email="werbung@example.com")
    spam_link = spam_link.headers["location"]
    spammed = staff.submit("/staff/t/1002/update", {"status": "spam"}, form_page="/staff/t/1002")
    assert spammed.status_code == 303
    guest = {"name": "Gustav Gast", "body": "Mit Anhang"}

    refused = [
        # the form: an address that is none
        with_files(client, "/contact", {**guest, "email": "kein-at"}, "/contact"),
        # the honeypot: a bot's post answers as if accepted
        with_files(
            new_client(),
            "/contact",
            {**guest, "email": "bot@example.com", "website": "http://spam.example"},
            "/contact",
        ),
        # the permission: someone else's conversation
        with_files(max_.client, f"/inbox/{number}/reply", {"body": "Fremd"}, "/inbox"),
        # a conversation that takes no replies
        with_files(new_client(), f"{spam_link}/reply", {"body": "Noch mehr"}, "/contact"),
        # an invoice for nobody
        with_files(staff.client, "/staff/invoice", {"customer": "99999", "body": "Hier"}, "/"),
    ]
    assert [response.status_code for response in refused] == [400, 303, 404, 403, 400]
    assert stored(settings) == []

    accepted = with_files(erika.client, f"/inbox/{number}/reply", {"body": "Hier"}, "/inbox")
    assert accepted.status_code == 303
    kept = stored(settings)
    assert len(kept) == 2 and not any(
        path.is_relative_to(settings.upload_dir / "tmp") for path in kept
    )


def test_the_sweep_removes_files_no_attachment_names_after_a_day(client, people, app, settings):
    erika = people.customer()
    page = erika.get("/inbox/new").text
    written = erika.client.post(
        "/inbox/new",
        data={"csrf_token": csrf_from(page), "body": "Beleg anbei"},
        files=[("attachments", ("beleg.pdf", PDF, "application/pdf"))],
    )
    assert written.status_code == 303
    named = stored_path(settings.upload_dir, hashlib.sha256(PDF).hexdigest())
    assert named.exists()

    def put(content: bytes, days_old: float, path: Path | None = None) -> Path:
        path = path or stored_path(settings.upload_dir, hashlib.sha256(content).hexdigest())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        moment = time.time() - days_old * 86400
        os.utime(path, (moment, moment))
        return path

    unnamed_old = put(b"%PDF-1.4 aus einem Schreiben, das nicht zu Ende kam", 2)
    unnamed_new = put(b"%PDF-1.4 gerade eben behalten, die Zeile folgt gleich", 0)
    leftover = put(b"halb", 2, settings.upload_dir / "tmp" / "upload-x.part")
    os.utime(named, (time.time() - 3 * 86400,) * 2)  # named: kept however old

    # (The app's own maintenance task may sweep at the same moment: count files, not calls.)
    client.portal.call(maintenance.sweep_files, app.state.db, settings)
    assert (unnamed_old.exists(), leftover.exists()) == (False, False)
    assert named.exists() and unnamed_new.exists()
    assert erika.get("/inbox/1001").status_code == 200


def test_the_rows_and_their_files_arrive_together_on_a_guest_reply(client, settings):
    link = guest_writes(client, "Ohne Datei").headers["location"]
    assert stored(settings) == []
    response = submit(
        client,
        f"{link}/reply",
        {"body": "Mit Datei"},
        form_page=link,
        files=[("attachments", ("a.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 303
    assert stored(settings) == [stored_path(settings.upload_dir, hashlib.sha256(PDF).hexdigest())]
