"""Words the pages translate that are not written as literals in a template: navigation, roles, statuses, device
types, who ended a call, recording kinds and states, audit actions, table columns. Marked with :func:`N_` so
``make translations`` extracts them (the templates translate them at render time with ``_()``)."""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a message for extraction without translating it here."""
    return message


VOCABULARY = (
    N_("History"), N_("Live"), N_("Statistics"), N_("Audit"), N_("Users"),
    N_("operator"), N_("supervisor"), N_("department"), N_("admin"),
    N_("answered"), N_("voice_message"), N_("callback_requested"), N_("abandoned_queue"), N_("abandoned_ivr"),
    N_("abandoned_before_queue"), N_("missed"), N_("failed"),
    N_("ip_phone"), N_("softphone"), N_("browser"), N_("unknown"),
    N_("caller"), N_("pbx"), N_("system"),
    N_("conversation"), N_("message"),
    N_("pending"), N_("processing"), N_("stored"), N_("empty"), N_("error"), N_("purged"),
    N_("list"), N_("play"), N_("download"),
    N_("Started"), N_("Caller"), N_("Line"), N_("Topic"), N_("Status"), N_("Operator"), N_("Wait"), N_("Talk"),
    N_("Not found"), N_("Call history"), N_("Your account"),
    N_("free"), N_("ringing"), N_("on_call"), N_("paused"), N_("unreachable"),
    N_("hour"), N_("day"), N_("week"),
    N_("Desk"), N_("logged_out"), N_("ringing_offer"), N_("talking"), N_("ended"), N_("note"),
    N_("break"), N_("lunch"), N_("meeting"), N_("training"), N_("paperwork"),
    N_("paused by the queue: a call rang out unanswered"), N_("Saved"), N_("None"), N_("Unknown"),
    N_("placed"), N_("reached"), N_("not_reached"),
    N_("idle"), N_("calling"), N_("held"), N_("Registered"), N_("Not registered"),
    N_("Cases"), N_("new"), N_("forwarded"), N_("in_progress"), N_("resolved"), N_("closed"), N_("returned"),
    N_("reopened"), N_("move-forwarded"), N_("move-in_progress"), N_("move-resolved"), N_("move-closed"),
    N_("move-returned"), N_("move-reopened"), N_("Case opened. Tell the citizen the case number:"),
    N_("unknown status"), N_("overdue"),
    N_("notify-forwarded"), N_("notify-overdue"), N_("email"), N_("webhook"), N_("sent"),
)
