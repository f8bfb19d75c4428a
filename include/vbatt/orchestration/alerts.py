"""Telling people when something needs them: a task failed, or the settlement is late.

Where alerts go is configured once, in the settings: ``VBATT_ALERT_WEBHOOK_URL`` receives
a JSON POST (chat tools and incident systems accept one), ``VBATT_ALERT_EMAILS`` a mail
through Airflow's ``[smtp]`` configuration. Nothing configured: the alert is only logged.
An alert that cannot be delivered is logged and swallowed: it must never turn a task's
real failure into a different one, nor fail a task that succeeded.
"""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import datetime
from typing import Any

import httpx

from vbatt.settings import get_settings

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value else None)


def task_failure_message(context: dict[str, Any]) -> dict[str, Any]:
    """What failed, where to look: the JSON body of the webhook and the mail's content."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    message = {
        "event": "task_failed",
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", -1),
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": _iso(context.get("logical_date")),
        "hostname": getattr(ti, "hostname", None),
        "error": f"{type(exception).__name__}: {exception}" if exception else None,
        "log_url": getattr(ti, "log_url", None),
    }
    shard = "" if message["map_index"] in (-1, None) else f"[{message['map_index']}]"
    message["text"] = (
        f"vbatt: {message['dag_id']}.{message['task_id']}{shard}"
        f" failed (run {message['run_id']}, try {message['try_number']}): {message['error']}"
    )
    return message


def deadline_message(context: dict[str, Any] | None, what: str) -> dict[str, Any]:
    dag_run = (context or {}).get("dag_run") or {}
    get = dag_run.get if isinstance(dag_run, dict) else lambda k: getattr(dag_run, k, None)
    message = {
        "event": "deadline_missed",
        "dag_id": get("dag_id"),
        "run_id": get("run_id"),
        "logical_date": _iso(get("logical_date")),
        "deadline": what,
    }
    message["text"] = f"vbatt: {what} (run {message['run_id']})"
    return message


def post_webhook(url: str, message: dict[str, Any]) -> None:
    response = httpx.post(url, json=message, timeout=TIMEOUT_S)
    response.raise_for_status()


def send_mail(to: tuple[str, ...], message: dict[str, Any]) -> None:
    from airflow.utils.email import send_email

    rows = "".join(
        f"<tr><th align=left>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in message.items()
        if k != "text"
    )
    send_email(
        list(to), message["text"], f"<p>{html.escape(message['text'])}</p><table>{rows}</table>"
    )


def deliver(message: dict[str, Any]) -> list[str]:
    """Send ``message`` everywhere configured; return where it went (for the log)."""
    settings = get_settings()
    log.error("%s", message["text"])
    delivered = []
    if settings.alert_webhook_url:
        try:
            post_webhook(settings.alert_webhook_url, message)
            delivered.append("webhook")
        except Exception as exc:  # noqa: BLE001 - an alert never fails the caller
            log.warning("alert webhook %s failed: %s", settings.alert_webhook_url, exc)
    if settings.alert_emails:
        try:
            send_mail(settings.alert_emails, message)
            delivered.append("mail")
        except Exception as exc:  # noqa: BLE001
            log.warning("alert mail to %s failed: %s", ", ".join(settings.alert_emails), exc)
    return delivered


def on_task_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback`` of every vbatt task (dag_defaults.DEFAULT_ARGS): runs on the
    worker once the task has failed for good (retries exhausted)."""
    deliver(task_failure_message(context))


async def settlement_deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Deadline alert of daily_settlement (an ``AsyncCallback``: runs in the triggerer)."""
    minutes = get_settings().settlement_deadline_minutes
    what = f"daily_settlement not done {minutes} minutes after it was queued"
    await asyncio.to_thread(deliver, deadline_message(context, what))
