"""The case status dialogue: key in a case number (``#`` ends it), hear its status read back.

Input is checked before any lookup (digits only, length bounds from the configuration); a bad entry is refused
with a prompt and offered again up to ``case_number.retries`` times. A failing lookup is reported and told to
the caller; it never ends the call. Afterwards the caller returns to the menu they came from.
"""

from __future__ import annotations

import logging

from callcenter.model.contract import IvrEvent
from ivr.cases import CaseLookup
from ivr.channel import Channel
from ivr.speech import digits
from ivr.steps import Services, entry_problem, read_entry, report_bad_entry, say

log = logging.getLogger(__name__)
MENU = "case"


def case_status(channel: Channel, services: Services) -> None:
    """Ask for a case number until a well-formed one is keyed (or the retries are used up) and announce it."""
    rules = services.model.ivr.case_number
    for attempt in range(1, rules.retries + 2):
        entered = read_entry(channel, MENU, "case-enter", rules, attempt)
        problem = entry_problem(entered, rules)
        if problem is None:
            announce(channel, services.cases, entered)
            return
        report_bad_entry(channel, MENU, entered, problem, attempt)
        channel.play("no-input" if problem == "empty" else "case-invalid")


def announce(channel: Channel, cases: CaseLookup, number: str) -> None:
    """Look the case up, report the result and read it to the caller."""
    try:
        found = cases.lookup(number)
    except Exception:  # the cases store failing must not cost the caller the call
        log.exception("case lookup failed for %r", number)
        channel.user_event(IvrEvent.CASE_LOOKUP, number=number, result="error")
        channel.play("case-unavailable")
        return
    if found is None:
        channel.user_event(IvrEvent.CASE_LOOKUP, number=number, result="not_found")
        say(channel, ["case-number", *digits(number), "case-not-found"])
        return
    channel.user_event(IvrEvent.CASE_LOOKUP, number=number, result="found", status=found.status)
    updated = ["case-updated", f"num-{found.updated.day}", "month", f"num-{found.updated.month}"] if found.updated \
        else []
    say(channel, ["case-number", *digits(number), "case-status-is", found.prompt, *updated])
