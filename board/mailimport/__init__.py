"""Importing old support mail (mbox, Maildir, a folder of .eml) into conversations.

Shops that move here from plain email support bring their history along. Reading is kept
apart from writing: the first half of this module turns files into `ParsedMail` values
and knows nothing of the database; the second half threads those into conversations, one
short write transaction per mail, so a running server on the same SQLite file keeps
answering. Every imported mail is recorded in `mail_imports`, which makes a second run
over the same files a no-op and lets replies in later runs find their thread.
"""

from board.mailimport.reading import NotAMailSource, detect_source
from board.mailimport.writing import ImportReport, import_mail, summary

__all__ = ["ImportReport", "NotAMailSource", "detect_source", "import_mail", "summary"]
