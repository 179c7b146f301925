"""IVR call flows: pure functions over a :class:`~ivr.channel.Channel`, so they are tested without Asterisk.

``hotline``: greeting of the dialled line -> (outside working hours: ``ivr.after_hours``) -> topic menu with the
case status and repeat keys -> the queue with the chosen topic. No input or bad keys repeat the menu
(``menu.retries``), then the caller goes to an operator with topic ``unknown``. A flow returns the
:class:`~callcenter.model.contract.IvrOutcome` it also set in ``IVR_OUTCOME``; :func:`run` turns a hang-up into
``IvrOutcome.HANGUP``.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

from callcenter.model.contract import UNKNOWN_TOPIC, IvrEvent, IvrOutcome, IvrVar
from callcenter.model.hotline import Line
from callcenter.model.ivr import Topic
from ivr.after_hours import after_hours
from ivr.case_status import case_status
from ivr.channel import Channel, Hangup
from ivr.speech import menu_option
from ivr.steps import Call, Menu, Services, run_menu, to_queue

Flow = Callable[[Channel, Call, Services], IvrOutcome]
MAIN_MENU = "main"


def run(flow: Flow, channel: Channel, call: Call, services: Services) -> IvrOutcome:
    """Run ``flow``; a hang-up ends it quietly (nothing can be reported on a dead channel)."""
    try:
        return flow(channel, call, services)
    except Hangup:
        return IvrOutcome.HANGUP


def hotline(channel: Channel, call: Call, services: Services) -> IvrOutcome:
    """The hotline: greeting, working hours, topic menu (see the module docstring)."""
    line = services.model.lines.get(call.line)
    language = line.language if line is not None else "vi"
    channel.use_language(language)
    channel.set_variable(IvrVar.LANG, language)
    channel.user_event(IvrEvent.START, line=call.line, lang=language)
    if line is None:  # the dialplan sent a number the configuration does not know: straight to a person
        return to_queue(channel, UNKNOWN_TOPIC, reason="unknown_line")
    channel.play(line.greeting_prompt)
    if not line.is_open(call.now):
        return after_hours(channel, call, services, line)
    return main_menu(channel, services, line)


def main_menu(channel: Channel, services: Services, line: Line) -> IvrOutcome:
    """The topic menu of ``line``; the case status key returns here afterwards, the repeat key replays it."""
    model = services.model
    keys = model.ivr.menu
    topics = model.line_topics(line)
    actions: dict[str, Callable[[], IvrOutcome | None]] = {t.digit: _choose(channel, t) for t in topics}
    actions[keys.case_status_digit] = lambda: case_status(channel, services)
    actions[keys.repeat_digit] = lambda: None
    prompts = ["menu-intro", *chain.from_iterable(menu_option(t.prompt, t.digit) for t in topics),
               *menu_option("menu-case-status", keys.case_status_digit),
               *menu_option("menu-repeat", keys.repeat_digit)]
    menu = Menu(name=MAIN_MENU, prompts=prompts, actions=actions, retries=keys.retries, timeout=keys.timeout)
    return run_menu(channel, menu) or to_queue(channel, UNKNOWN_TOPIC, reason="no_choice")


def _choose(channel: Channel, topic: Topic) -> Callable[[], IvrOutcome]:
    return lambda: to_queue(channel, topic.code, reason="key")


def passthrough(channel: Channel, call: Call, services: Services) -> IvrOutcome:
    """No menu: report the IVR was reached and go on to the queue (for load tests and emergencies)."""
    channel.user_event(IvrEvent.START, line=call.line)
    channel.set_variable(IvrVar.OUTCOME, IvrOutcome.QUEUE)
    return IvrOutcome.QUEUE


FLOWS: dict[str, Flow] = {
    "hotline": hotline,
    "passthrough": passthrough,
}
