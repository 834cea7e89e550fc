"""Cryptward's Azure Functions app: the doors only. Each trigger decodes its input, calls the package, returns.

Nothing heavy is imported here: the SDK clients load on the path that needs them (cold start).
"""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from remediations.health import report

    return func.HttpResponse(report(), mimetype="application/json")
