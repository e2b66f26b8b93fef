"""The lock that lets an erasure win every race with its visitor's own traffic.

An erasure (:func:`journeys.services.privacy.visitor_erase`) deletes a visitor and
everything that hangs off it while that visitor's browser may still be starting
sessions, sending events, moving stages and converting. Foreign keys are checked at
commit (Django makes them ``DEFERRABLE INITIALLY DEFERRED``), so without a common lock
a writer inserts a row for a session the eraser has just deleted, and one of the two
fails at commit (a foreign-key violation, or a deadlock).

The protocol:

- **A gate** in front of each visitor: a transaction-level advisory lock (``GATE``,
  one of :data:`GATE_BUCKETS` per hash of the visitor id). Writers take it shared, the
  eraser exclusive. PostgreSQL queues lock requests fairly, so once an eraser waits at
  the gate, writers that come later wait behind it: a visitor's continuous traffic
  cannot starve its erasure (as a stream of row-level share locks can). A bucket covers
  many visitors, so a batch of events takes at most :data:`GATE_BUCKETS` locks, in
  bucket order; an erasure holds up the other visitors of its bucket for milliseconds.
- **The visitor's row.** Every transaction (or single statement) that inserts rows
  referencing a visitor or one of its sessions holds the row ``FOR KEY SHARE``, after
  the gate and before any lock on its sessions (:func:`held`, a sub-select evaluated
  before the statement locks the session row it qualifies). ``KEY SHARE`` conflicts
  only with ``FOR UPDATE``: writers never wait for one another on it, nor for updates of
  the visitor's own columns (persona, consent, sensitivity: ``FOR NO KEY UPDATE``).
  Sessions are locked ``FOR NO KEY UPDATE``, several of them in id order, so the
  foreign-key checks of other writers' rows (``KEY SHARE``) never wait for them.
- **The eraser** passes the gate exclusively, then locks the visitor row ``FOR UPDATE``
  before it reads or deletes anything: it waits for the writers inside, then reads and
  deletes what they committed.
- **A writer that waited** finds the row gone (PostgreSQL skips a row deleted while a
  locking read waited): its session is not found, so it writes nothing and answers
  like a request that came after the erasure (404 ``session_not_found``; an event is
  rejected with ``session_id: Unknown session``), or, where it creates the visitor
  (session start, consent), creates a fresh, empty one.

Locks are taken in one order: gate, visitor, its sessions, anything else. An eraser
holds one gate and one visitor; writers hold gates and visitors only in shared modes.
So no cycle can form between writers and an eraser, nor between writers.
"""

from __future__ import annotations

from django.db import connection

from journeys.models import JourneySession, Visitor

VISITOR_TABLE = Visitor._meta.db_table
# The advisory-lock namespace of the gate ("ERAS"), and how many gates share the visitors.
GATE = 0x45524153
GATE_BUCKETS = 64


def gate_sql(visitor_id_sql: str, *, shared: bool = True) -> str:
    """The gate of the visitor whose ``visitor_id`` (the client's id, text) the SQL names."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    return f"{function}({GATE}, hashtext({visitor_id_sql}) & {GATE_BUCKETS - 1})"


def held(visitor_column: str, *, gate: bool = True) -> str:
    """An SQL condition that holds the visitor ``visitor_column`` names (its gate shared,
    then its row ``FOR KEY SHARE``) and is false once that visitor is erased.

    Put it in the ``WHERE`` of the statement that reads (and locks) the session: both
    are taken before the session row is locked. ``gate=False`` when the caller passed
    the gates already (:func:`gates_pass`).
    """
    passing = f", LATERAL {gate_sql('held.visitor_id')} AS gate" if gate else ""
    return f"EXISTS (SELECT FROM {VISITOR_TABLE} held{passing} WHERE held.id = {visitor_column} FOR KEY SHARE OF held)"


def gates_pass(sessions_where: str, params: list) -> None:
    """Pass (shared) the gates of the visitors of the sessions ``sessions_where`` selects
    (a condition on the session table, alias ``s``), in bucket order: one statement."""
    bucket = f"hashtext(v.visitor_id) & {GATE_BUCKETS - 1}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_xact_lock_shared({GATE}, bucket) FROM (SELECT DISTINCT {bucket} AS bucket "
            f"FROM {JourneySession._meta.db_table} s JOIN {VISITOR_TABLE} v ON v.id = s.visitor_id "
            f"WHERE {sessions_where} ORDER BY 1) gates",
            params,
        )


def visitor_gate_pass(visitor_id: str, *, shared: bool = True) -> None:
    """Pass the gate of the visitor with this client id (before creating or erasing it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {gate_sql('%s', shared=shared)}", [visitor_id])


def visitor_hold(visitor_pk: int) -> bool:
    """Hold the visitor (gate shared, row ``FOR KEY SHARE``) until the transaction ends.

    False when it no longer exists (it was erased, perhaps while this waited).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {VISITOR_TABLE} v, LATERAL {gate_sql('v.visitor_id')} AS gate "
            "WHERE v.id = %s FOR KEY SHARE OF v",
            [visitor_pk],
        )
        return cursor.fetchone() is not None
