"""Whose data an answer carries: a security check of an entry point that
serves many users (a gateway with a per-user cache).

The evidence is gathered by the harness, not reported by the target:

- the load tags each request with the subject of the token it sends
  (``RequestSpec.tags``: ``subject``) and, when it also claims another
  identity in headers, that identity (``claimed``);
- the answer names whose data each part is (``LoadSpec.body_fields`` such as
  ``parts.users.user``), read from the client's side;
- each backend records what it was asked for, with the request id the
  entry point passed on (``observed`` ``arrival`` events with ``request_id``
  and ``user``), matched to the load's rows by the id the load gave them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..timeline import Frames
from .gateway import arrivals_at
from .verdict import Verdict, check, judged
from .windows import MissingData, round_figures

SUBJECT, CLAIMED = "subject", "claimed"


@dataclass(frozen=True)
class Evidence:
    """The rows and arrivals the check judges, each carrying the caller's subject."""

    answers: pd.DataFrame   # 200 answers that name an owner of some part
    fields: list[str]       # the owner fields the rows carry
    spoofed: pd.DataFrame   # requests that claimed another identity
    asked: pd.DataFrame     # arrivals at backends, joined to their request's subject and claim


def gather(frames: Frames, backends: tuple[str, ...], owner_fields: tuple[str, ...], *, min_answers: int,
           min_subjects: int, min_spoofed: int) -> Evidence:
    """What the check needs, or MissingData naming what the load or probes lacked."""
    rows = _tagged(frames.requests, min_subjects)
    fields = [f for f in owner_fields if f in rows]
    if not fields:
        raise MissingData(f"request rows carry none of {', '.join(owner_fields)}: load with those body_fields")
    answers = rows[(rows["status"] == 200) & rows[fields].notna().any(axis=1)]
    if len(answers) < min_answers:
        raise MissingData(f"only {len(answers)} answers named whose data they carry (need {min_answers})")
    spoofed = rows[rows[CLAIMED].notna() & (rows[CLAIMED] != rows[SUBJECT])]
    if len(spoofed) < min_spoofed:
        raise MissingData(f"only {len(spoofed)} requests claimed another user's identity (need {min_spoofed}): "
                          "a gateway that believes client-sent identity would go unseen")
    return Evidence(answers, fields, spoofed, _asked(frames, rows, backends))


def _tagged(rows: pd.DataFrame, min_subjects: int) -> pd.DataFrame:
    """The rows the load tagged with their token's subject (and a claim column, empty if none claimed)."""
    if SUBJECT not in rows or rows[SUBJECT].nunique() < min_subjects:
        raise MissingData(f"requests name fewer than {min_subjects} token subjects: tag them (RequestSpec.tags "
                          f"'{SUBJECT}') and load with several users")
    rows = rows[rows[SUBJECT].notna()]
    return rows if CLAIMED in rows else rows.assign(**{CLAIMED: None})


def _asked(frames: Frames, rows: pd.DataFrame, backends: tuple[str, ...]) -> pd.DataFrame:
    """Each backend arrival of a tagged request, with that request's subject and claim."""
    if "request_id" not in rows or rows["request_id"].isna().all():
        raise MissingData("request rows carry no request id: load with request_id_header")
    arrivals = arrivals_at(frames, backends)
    if arrivals.empty or not {"request_id", "user"} <= set(arrivals):
        raise MissingData(f"no arrivals with request ids and users were recorded at {', '.join(backends)}: "
                          "probe the backends' arrivals")
    asked = arrivals.merge(rows[["request_id", SUBJECT, CLAIMED]].dropna(subset=["request_id"]), on="request_id")
    if asked.empty:
        raise MissingData("no arrival carries the id of a tagged request: the entry must pass the request id on")
    return asked


def _foreign(rows: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """Per owner field, True where the row's part is present and not the caller's."""
    return pd.DataFrame({f: rows[f].notna() & (rows[f].astype(str) != rows[SUBJECT].astype(str)) for f in fields})


def _counts(counts: pd.Series) -> str | None:
    return ", ".join(f"{k} {int(v)}" for k, v in counts.items() if v) or None


@check("answers-belong-to-caller", steady=True)  # whose data an answer holds matters with or without a fault
def answers_belong_to_caller(frames: Frames, *, backends: tuple[str, ...], owner_fields: tuple[str, ...],
                             min_answers: int = 20, min_subjects: int = 2, min_spoofed: int = 10) -> Verdict:
    """Security: every answer's data belongs to the subject of the token it was
    asked with, and every backend was asked for that subject, also when the
    request claimed another user's identity in headers. A cache keyed without
    the user breaks the first clause; believing a client-sent identity, both."""
    ev = gather(frames, backends, owner_fields, min_answers=min_answers, min_subjects=min_subjects,
                min_spoofed=min_spoofed)
    foreign = _foreign(ev.answers, ev.fields)
    is_foreign = foreign.any(axis=1)
    spoofed = ev.answers.index.isin(ev.spoofed.index)
    wrong = ev.asked[ev.asked["user"].astype(str) != ev.asked[SUBJECT].astype(str)]
    figures = round_figures(
        subjects=int(ev.answers[SUBJECT].nunique()), answers=len(ev.answers), foreign_answers=int(is_foreign.sum()),
        foreign_parts=_counts(foreign.sum()), spoofed_requests=len(ev.spoofed),
        foreign_when_spoofed=int(is_foreign[spoofed].sum()), foreign_when_plain=int(is_foreign[~spoofed].sum()),
        backend_calls_matched=len(ev.asked), backend_calls_for_other_user=len(wrong),
        backend_calls_for_claimed=int((wrong["user"].astype(str) == wrong[CLAIMED].astype(str)).sum()),
        other_user_at=_counts(wrong["source"].value_counts()))
    return judged("answers-belong-to-caller",
                  {"answers_own_data": not is_foreign.any(), "backends_asked_for_caller": wrong.empty},
                  _explain(figures, spoofed_answers=int(spoofed.sum())), kind="security", **figures)


def _explain(f: dict, *, spoofed_answers: int) -> str:
    """The verdict's sentence, said as the security finding it is."""
    text = (f"security: {f['foreign_answers']} of {f['answers']} answers to {f['subjects']} users carried another "
            f"user's data (limit 0): {f['foreign_when_spoofed']} of {spoofed_answers} sent claiming another user's "
            f"identity in headers, {f['foreign_when_plain']} of {f['answers'] - spoofed_answers} sent without")
    if f["foreign_parts"]:
        text += f" (foreign parts: {f['foreign_parts']})"
    text += (f"; {f['backend_calls_for_other_user']} of {f['backend_calls_matched']} backend calls asked for another "
             "user than the token's (limit 0)")
    if f["other_user_at"]:
        text += f": {f['other_user_at']}, {f['backend_calls_for_claimed']} of them for the claimed identity"
    return text


__all__ = ["answers_belong_to_caller"]
