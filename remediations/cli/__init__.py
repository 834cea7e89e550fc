"""The `cryptward` command line, for a laptop: not deployed with the function app (.funcignore leaves it out).

| module | what it does |
|---|---|
| `main` | the typer app: `scan`, `report`, `serve`, `demo` |
| `scan`, `output` | `cryptward scan` and its table, Markdown and JSON |
| `report` | `cryptward report` |
| `serve` | hosts function_app.py's own function objects locally |
| `demo`, `demo_world` | `cryptward demo`: the sandbox, Azurite and the bot, live |
| `functions` | introspection of function_app.py's function objects |
"""

__all__ = ["main"]
