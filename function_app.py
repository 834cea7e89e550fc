"""Cryptward's Azure Functions app: the doors only. Each trigger decodes its input, calls the package, returns.

Nothing heavy is imported here: the SDK clients load on the path that needs them (cold start).
"""

import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from remediations.triggers.health import answer

    status, body = answer()
    return func.HttpResponse(body, status_code=status, mimetype="application/json")


@app.event_grid_trigger(arg_name="event")
def eventgrid(event: func.EventGridEvent) -> None:
    """Resource writes and VM deallocations (the subscription's system topic), Key Vault key events."""
    from remediations.triggers.intake import on_event

    when = event.event_time.isoformat() if event.event_time else None
    body = {"id": event.id, "topic": event.topic, "subject": event.subject, "eventType": event.event_type}
    outcome = on_event({**body, "eventTime": when, "dataVersion": event.data_version, "data": event.get_json()})
    logging.getLogger("cryptward.intake").debug("event %s: %s", event.id, outcome)


@app.route(route="alerts", methods=["POST"])
def alerts(req: func.HttpRequest) -> func.HttpResponse:
    """Activity-log alerts from an action group's webhook (common alert schema). Function key required."""
    import json

    from remediations.triggers.intake import on_alert

    status, reply = on_alert(req.get_body())
    return func.HttpResponse(json.dumps(reply), status_code=status, mimetype="application/json")


@app.route(route="approvals", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def approvals(req: func.HttpRequest) -> func.HttpResponse:
    """Approve / deny links. Anonymous on purpose (a function key in the link would be one more secret in chat): the
    signed, expiring, single-use link names the change, and the approver signs in with Entra ID before deciding."""
    from remediations.triggers.decisions import respond

    status, page, extra = respond(req.method, dict(req.params), req.get_body(), dict(req.headers))
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", **extra}
    return func.HttpResponse(page, status_code=status, mimetype="text/html", headers=headers)


@app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    """Re-check everything in scope, so that a lost event is caught: one work item per resource, 32 to a message."""
    from remediations.triggers.intake import sweep as run

    run()


@app.timer_trigger(arg_name="timer", schedule="%ROTATION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def rotation(timer: func.TimerRequest) -> None:
    """Key rotation: one work item per key vault in scope."""
    from remediations.triggers.intake import rotation_sweep

    rotation_sweep()


@app.queue_trigger(arg_name="msg", queue_name="%CRYPTWARD_WORK_QUEUE%", connection="AzureWebJobsStorage")
def worker(msg: func.QueueMessage) -> None:
    """One resource (or a sweep's pack, one by one): read, evaluate, plan, apply, record. Raising makes the host retry,
    then poison the message."""
    from remediations.triggers.worker import handle_message

    handle_message(msg.get_body(), getattr(msg, "dequeue_count", None) or 1, msg.id)


@app.timer_trigger(arg_name="timer", schedule="%NOTICES_SCHEDULE%", run_on_startup=False, use_monitor=True)
def notices(timer: func.TimerRequest) -> None:
    """Notices that could not be delivered (kept in the outbox table), tried again once their time has come."""
    from remediations.triggers.worker import retry_notices

    retry_notices()
