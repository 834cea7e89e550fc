"""Cut one response out of a recorded cassette into a conformance recording (tests/conformance/recordings/).

Reads a Cloud Custodian cassette (JSON; `response.body.data` already parsed) or a vcrpy YAML cassette as the Azure
CLI and the Azure SDK for Python write them (`response.body.string`, a JSON text), picks one interaction, and writes

    {"source": {"repository", "path", "commit", "interaction"}, "request": {"method", "path", "apiVersion"[, "query"]},
     "status": int, "body": <the response body, parsed, key order kept>}

The body is not changed (the recorder already scrubbed secrets). The request path is the URL's path as recorded
(subscription and resource group as the recorder sanitised them), without host and query.

    python -m tests.conformance.extract CASSETTE INDEX OUT.json --repository owner/name --path PATH --commit SHA
        [--interaction "GET /subscriptions/...?api-version=..."]

`INDEX` is the interaction's position in CASSETTE; `--interaction` replaces it in `source` when CASSETTE is an
excerpt of the original file (then say which request it was, as its request line).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def load_interactions(cassette: Path) -> list[dict[str, Any]]:
    text = cassette.read_text(encoding="utf-8")
    if cassette.suffix == ".json":
        return list(json.loads(text)["interactions"])
    import yaml

    return list(yaml.safe_load(text)["interactions"])


def response_body(interaction: dict[str, Any]) -> Any:
    body = interaction["response"].get("body") or {}
    if "data" in body:
        return body["data"]
    raw = body.get("string")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return json.loads(raw) if raw else None


def to_recording(interaction: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    req = interaction["request"]
    url = urlsplit(req["uri"])
    query = parse_qs(url.query)
    status = interaction["response"]["status"]
    request = {"method": req["method"], "path": url.path, "apiVersion": (query.get("api-version") or [None])[0]}
    extra = {k: v[0] for k, v in query.items() if k not in ("api-version", "$skiptoken")}
    if extra:
        request["query"] = extra  # e.g. $expand=instanceView: it changes the answer's shape
    return {
        "source": source,
        "request": request,
        "status": int(status["code"] if isinstance(status, dict) else status),
        "body": response_body(interaction),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cassette", type=Path)
    ap.add_argument("index", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--repository", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--interaction", help="the request line, when CASSETTE is an excerpt of the original")
    args = ap.parse_args(argv)
    interaction = load_interactions(args.cassette)[args.index]
    source = {
        "repository": args.repository,
        "path": args.path,
        "commit": args.commit,
        "interaction": args.interaction or args.index,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(to_recording(interaction, source), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
