"""Household profiles as dated facts: the ``WITH`` clause and join a report by profile uses."""

from __future__ import annotations

__all__ = ["PROFILE_JOIN", "profile_facts"]

TIME = "r.occurred_at"  # the record's time, the clock repaired where it could be
# Household profiles are facts with dates (docs/reports.md): an imported tag holds over its
# spans (``profiles``: since/until, days both included, '' no bound), a tag scanned at the
# counter from the first record that carries it (``scanned_profiles`` names the pairs; the
# partial index ``idx_records_profiled`` finds those records; their ledger time, so a repaired
# clock moves it; NULL when a purge took them: it held before every record left). A weighing is
# in a tag's row when a fact of its person covers its time: ``facts`` are made not to overlap
# (an imported span ends where the scanned fact starts), so a weighing joins a tag once.
_SCANNED_SINCE = (
    "SELECT t.beneficiary, t.tag, min(f.occurred_at) AS since FROM scanned_profiles t "
    "LEFT JOIN records f ON f.beneficiary = t.beneficiary AND f.data LIKE '%\"profile\"%' "
    "AND {contains}(f.data, '\"' || t.tag || '\"') > 0 GROUP BY t.beneficiary, t.tag"
)
_END_OF_DAY = "'T24:00:00.000Z'"  # ISO 8601's end of a day: after its last instant
_FACTS = f"""scanned AS ({_SCANNED_SINCE}),
facts AS (
    SELECT p.beneficiary, p.tag, nullif(p.since, '') AS since_at,
        CASE WHEN s.beneficiary IS NOT NULL
            AND (p.until = '' OR p.until || {_END_OF_DAY} > s.since) THEN s.since
        WHEN p.until = '' THEN CAST(NULL AS TEXT) ELSE p.until || {_END_OF_DAY} END AS before_at
    FROM profiles p LEFT JOIN scanned s ON s.beneficiary = p.beneficiary AND s.tag = p.tag
    WHERE s.beneficiary IS NULL OR (s.since IS NOT NULL AND p.since < s.since)
    UNION ALL SELECT beneficiary, tag, since, CAST(NULL AS TEXT) FROM scanned)"""
PROFILE_JOIN = (
    "LEFT JOIN facts p ON p.beneficiary = r.beneficiary "
    f"AND (p.since_at IS NULL OR p.since_at <= {TIME}) "
    f"AND (p.before_at IS NULL OR {TIME} < p.before_at)"
)


def profile_facts(dialect: str) -> str:
    """The ``WITH`` clause of ``facts`` (beneficiary, tag, since_at, before_at): the
    profiles a report joins (``since_at`` included, ``before_at`` excluded, NULL: no bound)."""
    contains = "strpos" if dialect == "postgresql" else "instr"
    return "WITH " + _FACTS.replace("{contains}", contains) + " "
