"""Building blocks the flows share: the call's context, a one-key menu with retries, keyed-in entries, hand-offs.

Every step reports what happened (see :class:`ivr.channel.Event`) before it plays anything that follows, so a
caller who hangs up mid-prompt still leaves a complete path in the call log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from callcenter.model.contract import IvrEvent, IvrOutcome, IvrVar
from callcenter.model.hotline import HotlineModel
from callcenter.model.ivr import EntryRules
from ivr.cases import CaseLookup, NoCases
from ivr.channel import Channel

ANY_KEY = "0123456789*#"
MAX_ROUNDS = 10  # a menu is offered at most this often, whatever the caller keys (repeat, case lookups)
MAX_REPORTED = 20  # characters of a bad entry kept in the call log


@dataclass(frozen=True)
class Call:
    """What the dialplan and Asterisk say about the call when the IVR takes it."""

    line: str  # the dialled hotline number
    now: datetime  # aware; decides working hours
    caller: str = ""  # caller-id number, offered for a callback


@dataclass(frozen=True)
class Services:
    """What flows use besides the channel: the telephony model and the case lookup."""

    model: HotlineModel
    cases: CaseLookup = field(default_factory=NoCases)


Action = Callable[[], IvrOutcome | None]  # None: offer the menu again


@dataclass(frozen=True)
class Menu:
    """A one-key menu: the prompts that announce it, what each key does, and how long to wait."""

    name: str
    prompts: Sequence[str]
    actions: Mapping[str, Action]
    retries: int
    timeout: float


def say(channel: Channel, prompts: Sequence[str]) -> None:
    """Play prompts in order, without interruption."""
    for prompt in prompts:
        channel.play(prompt)


def ask(channel: Channel, prompts: Sequence[str], timeout: float) -> str:
    """Play prompts (any key cuts them short) and return the key, or wait ``timeout`` for one."""
    for prompt in prompts:
        key = channel.play(prompt, ANY_KEY)
        if key:
            return key
    return channel.wait_key(timeout)


def run_menu(channel: Channel, menu: Menu) -> IvrOutcome | None:
    """Offer ``menu`` until an action returns an outcome; None once no input or bad keys used up the retries."""
    failures = 0
    for round_ in range(1, MAX_ROUNDS + 1):
        channel.user_event(IvrEvent.MENU, menu=menu.name, attempt=str(round_))
        key = ask(channel, menu.prompts, menu.timeout)
        action = menu.actions.get(key)
        if action is None:
            failures += 1
            _report_bad_key(channel, menu.name, key, round_)
            if failures > menu.retries:
                return None
            continue
        channel.user_event(IvrEvent.KEY, menu=menu.name, digit=key)
        outcome = action()
        if outcome is not None:
            return outcome
    return None


def _report_bad_key(channel: Channel, menu: str, key: str, attempt: int) -> None:
    if key:
        channel.user_event(IvrEvent.INVALID, menu=menu, input=key[:MAX_REPORTED])
        channel.play("invalid")
    else:
        channel.user_event(IvrEvent.TIMEOUT, menu=menu, attempt=str(attempt))
        channel.play("no-input")


def entry_problem(entered: str, rules: EntryRules) -> str | None:
    """Why a keyed-in number is not acceptable (``empty``, ``not_digits``, ``too_short``, ``too_long``), or None."""
    if not entered:
        return "empty"
    if any(char not in "0123456789" for char in entered):
        return "not_digits"
    if len(entered) < rules.min_length:
        return "too_short"
    if len(entered) > rules.max_length:
        return "too_long"
    return None


def read_entry(channel: Channel, menu: str, prompt: str, rules: EntryRules, attempt: int) -> str:
    """Offer an entry (``#`` ends it); one key more than allowed is read so that too long input shows."""
    channel.user_event(IvrEvent.MENU, menu=menu, attempt=str(attempt))
    return channel.collect(prompt, max_digits=rules.max_length + 1, timeout=rules.timeout)


def report_bad_entry(channel: Channel, menu: str, entered: str, problem: str, attempt: int) -> None:
    """Report a rejected entry: a timeout when nothing was keyed, else what was keyed and why it is refused."""
    if problem == "empty":
        channel.user_event(IvrEvent.TIMEOUT, menu=menu, attempt=str(attempt))
    else:
        channel.user_event(IvrEvent.INVALID, menu=menu, input=entered[:MAX_REPORTED], problem=problem)


def to_queue(channel: Channel, topic: str, reason: str) -> IvrOutcome:
    """Hand the caller to the operators queue with ``topic`` (``unknown`` says why in ``reason``)."""
    channel.set_variable(IvrVar.TOPIC, topic)
    channel.set_variable(IvrVar.OUTCOME, IvrOutcome.QUEUE)
    channel.user_event(IvrEvent.TOPIC, topic=topic, reason=reason)
    channel.user_event(IvrEvent.EXIT, outcome=IvrOutcome.QUEUE, reason=reason)
    channel.play("to-operator")
    return IvrOutcome.QUEUE
