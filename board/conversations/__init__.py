"""Conversations between the shop and its customers: the one owner of every write.

Conversations, messages and attachments are written here and nowhere else: opening one
(customer, guest, staff), replies and internal notes, status and assignment,
announcements, invoice notices, imported mail, joining a guest conversation to an
account. Each write authorizes first, checks the flood rule inside its transaction,
keeps the summary columns (`summary.py`), moves uploaded files into storage with their
rows, and queues search, live events and mail in the same transaction. Nothing here
knows HTTP: failures are `board.errors` that the web layer answers.
"""
