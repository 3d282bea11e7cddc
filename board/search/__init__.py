"""Search: one Whoosh index under <data>/index for the forum and the conversations."""
