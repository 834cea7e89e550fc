"""The Azure Policy language, pure: no I/O.

| module | what it holds |
|---|---|
| `loader` | policies/ folders in; `Policies` out (the loaded `Policy` objects and the refused definitions) |
| `definitions` | an unmodified Azure Policy definition with its assignment.json and cryptward.yaml |
| `assignments` | the assignment body (`az policy assignment show`): its schema and what Cryptward honours |
| `model` | `Policy`, `Refused`, `Policies`, Modify operations |
| `schema` | the JSON schema of `policy.yaml`, its errors listing the valid options |
| `conditions` | `if` conditions compiled once, evaluated over ARM bodies |
| `expressions` | template expressions (`[concat(...)]`): tokenizer, parser, compiler |
| `functions` | the template functions Azure Policy allows, pure |
| `fields` | what `field()`, `current()` and `"field":` select |
| `operators` | the condition operators |
| `aliases` | Azure Policy aliases of the types Cryptward reads, and their api-versions |
| `exemptions` | exemptions declared with a tag |
"""

from remediations.policy.conditions import compile_condition
from remediations.policy.loader import FixRef, Policies, Policy, References, Refused, first_sentence, load_policies

__all__ = [
    "FixRef",
    "Policies",
    "Policy",
    "References",
    "Refused",
    "compile_condition",
    "first_sentence",
    "load_policies",
]
