"""Errors allowed not to name the attacked argument, each with its reason.

Keys are probe ids (``"<entry>|<probe name>"``, as the findings table
prints them). Keep this list short: an entry here is a message a user gets
without being told which argument is wrong.
"""

UNNAMED_ALLOWED = {}
