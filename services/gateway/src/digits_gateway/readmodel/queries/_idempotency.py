"""The jobs a principal's Idempotency-Key created (a retried create finds them here)."""

from __future__ import annotations

from digits_gateway.readmodel.queries._records import Cursor

# A sweep creates one job per combination: the first under the key itself, the others under
# the key, a newline (never in a key: keys are printable) and the combination's index.
PART = "\n"


def created_under_key(cur: Cursor, username: str, key: str) -> dict[str, tuple[str, str, str]]:
    """{stored key: (job id, name, request digest)} of each job `username` created under `key`
    or one of its sweep parts (deleted ones too: the first answer named them)."""
    rows = cur.execute(
        """select idem_key, id, name, idem_digest from jobs
           where username = ? and (idem_key = ? or starts_with(idem_key, ?))""",
        [username, key, key + PART],
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3] or "") for r in rows}
