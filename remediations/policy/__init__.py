"""The Azure Policy language, pure: no I/O.

| module | what it holds |
|---|---|
| `loader` | policies/ folders and unmodified Azure Policy definitions in; `Policy` objects out |
| `schema` | the JSON schema of `policy.yaml`, its errors listing the valid options |
| `conditions` | `if` conditions compiled once, evaluated over ARM bodies |
| `expressions` | template expressions (`[concat(...)]`): tokenizer, parser, compiler |
| `fields` | what `field()`, `current()` and `"field":` select |
| `operators` | the condition operators |
| `aliases` | Azure Policy aliases of the types Cryptward reads, and their api-versions |
| `exemptions` | exemptions declared with a tag |
"""

from remediations.policy.conditions import compile_condition
from remediations.policy.loader import FixRef, Policy, References, first_sentence, load_policies

__all__ = ["FixRef", "Policy", "References", "compile_condition", "first_sentence", "load_policies"]
