# hypothesis is imported here, at collection, not lazily by its plugin at the end of the session: on CPython 3.11.7
# that late import (pytest rewrites plugin modules) trips "AST constructor recursion depth mismatch" after the
# Azure SDK clients have run.
import hypothesis  # noqa: F401

pytest_plugins = ["sandbox.testing"]
