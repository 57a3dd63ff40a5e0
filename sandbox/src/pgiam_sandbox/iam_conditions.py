"""The Condition element of an IAM policy statement, decided against a request context (the stand-in's own).

Written from AWS's documentation, not from pgiam_tui's code (the product never decides conditions; the
stand-in must, because it plays IAM):

- Condition operators — https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  String*, Numeric*, Date*, Bool, BinaryEquals, IpAddress/NotIpAddress, Arn*, Null, the `...IfExists` suffix;
  a key missing from the request context makes a condition false, except for negated operators
  (StringNotEquals, ArnNotLike, ...) where it makes it true, and except `...IfExists` and `Null`.
- Several operators, several keys: AND; several values for one key: OR; for a negated operator: NOR —
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
  (also `ForAnyValue:` / `ForAllValues:` for multi-valued keys).
- Condition key names are case-insensitive; values of StringEquals are case-sensitive —
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
- ArnLike/ArnEquals compare each of the six colon-delimited ARN parts separately.

An operator or value this module does not know makes the condition false (fail closed, as IAM refuses to
store such a policy in the first place).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Context", "conditions_hold", "glob_regex"]

#: The request context: condition key (any case) -> one value or several (multi-valued keys).
Context = Mapping[str, str | Sequence[str]]


def glob_regex(pattern: str, *, any_char: str = ".", ignore_case: bool = False) -> re.Pattern[str]:
    """`*` = any run of characters, `?` = one character, everything else literal (no character classes)."""
    body = "".join(
        f"{any_char}*" if ch == "*" else any_char if ch == "?" else re.escape(ch) for ch in pattern
    )
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _lookup(context: Context, key: str) -> list[str] | None:
    """The context's values for KEY (names compared case-insensitively), None when the key is absent."""
    wanted = key.lower()
    for name, value in context.items():
        if name.lower() == wanted:
            return [value] if isinstance(value, str) else [str(v) for v in value]
    return None


def _values(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [_scalar(v) for v in raw]
    return [_scalar(raw)]


def _scalar(value: Any) -> str:
    # JSON true/false/numbers are allowed in policies ("Bool": {"aws:SecureTransport": false}).
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- value comparisons: (context value, policy value) -> bool -----------------------------------------------


def _str_eq(a: str, b: str) -> bool:
    return a == b


def _str_eq_ci(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _str_like(a: str, b: str) -> bool:
    return glob_regex(b).fullmatch(a) is not None


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return None


def _numeric(test: Callable[[Decimal, Decimal], bool]) -> Callable[[str, str], bool]:
    def compare(a: str, b: str) -> bool:
        x, y = _number(a), _number(b)
        return x is not None and y is not None and test(x, y)

    return compare


def _date(text: str) -> datetime | None:
    """ISO 8601 (with or without time / zone) or epoch seconds, as the date operators accept."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return datetime.fromtimestamp(int(text), UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _dated(test: Callable[[datetime, datetime], bool]) -> Callable[[str, str], bool]:
    def compare(a: str, b: str) -> bool:
        x, y = _date(a), _date(b)
        return x is not None and y is not None and test(x, y)

    return compare


def _bool(a: str, b: str) -> bool:
    return a.lower() == b.lower() and a.lower() in ("true", "false")


def _binary(a: str, b: str) -> bool:
    try:
        return base64.b64decode(a, validate=True) == base64.b64decode(b, validate=True)
    except ValueError:
        return False


def _ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.strip()) in ipaddress.ip_network(b.strip(), strict=False)
    except ValueError:
        return False


def _arn_parts(arn: str) -> list[str] | None:
    parts = arn.split(":", 5)
    return parts if len(parts) == 6 else None


def _arn_like(a: str, b: str) -> bool:
    value, pattern = _arn_parts(a), _arn_parts(b)
    if value is None or pattern is None:
        return False
    return all(glob_regex(p).fullmatch(v) is not None for p, v in zip(pattern, value, strict=True))


def _arn_eq(a: str, b: str) -> bool:
    return _arn_like(a, b)  # AWS documents ArnEquals and ArnLike alike (wildcards allowed in both)


#: operator (without IfExists / set qualifier) -> (comparison, negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "stringequals": (_str_eq, False),
    "stringnotequals": (_str_eq, True),
    "stringequalsignorecase": (_str_eq_ci, False),
    "stringnotequalsignorecase": (_str_eq_ci, True),
    "stringlike": (_str_like, False),
    "stringnotlike": (_str_like, True),
    "numericequals": (_numeric(lambda x, y: x == y), False),
    "numericnotequals": (_numeric(lambda x, y: x == y), True),
    "numericlessthan": (_numeric(lambda x, y: x < y), False),
    "numericlessthanequals": (_numeric(lambda x, y: x <= y), False),
    "numericgreaterthan": (_numeric(lambda x, y: x > y), False),
    "numericgreaterthanequals": (_numeric(lambda x, y: x >= y), False),
    "dateequals": (_dated(lambda x, y: x == y), False),
    "datenotequals": (_dated(lambda x, y: x == y), True),
    "datelessthan": (_dated(lambda x, y: x < y), False),
    "datelessthanequals": (_dated(lambda x, y: x <= y), False),
    "dategreaterthan": (_dated(lambda x, y: x > y), False),
    "dategreaterthanequals": (_dated(lambda x, y: x >= y), False),
    "bool": (_bool, False),
    "binaryequals": (_binary, False),
    "ipaddress": (_ip, False),
    "notipaddress": (_ip, True),
    "arnequals": (_arn_eq, False),
    "arnnotequals": (_arn_eq, True),
    "arnlike": (_arn_like, False),
    "arnnotlike": (_arn_like, True),
}


def _one_key(operator: str, key: str, policy_values: list[str], context: Context) -> bool:
    """One `operator: {key: values}` entry against the context."""
    name = operator.lower()
    qualifier = ""
    for prefix in ("foranyvalue:", "forallvalues:"):
        if name.startswith(prefix):
            qualifier, name = prefix, name[len(prefix) :]
    actual = _lookup(context, key)
    if name == "null":
        # "true": the key must be absent; "false": present (non-null).
        want_absent = [v.lower() for v in policy_values]
        return any((actual is None) == (w == "true") for w in want_absent if w in ("true", "false"))
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    if name not in _OPERATORS:
        return False
    compare, negated = _OPERATORS[name]
    if actual is None:
        if if_exists or qualifier == "forallvalues:":
            return True  # IfExists: absent key passes; ForAllValues over an empty set is true
        return negated
    if qualifier == "forallvalues:":
        return all(_matches_any(compare, negated, [value], policy_values) for value in actual)
    # Single-valued keys and ForAnyValue: true when some context value matches (for negated: none does).
    return _matches_any(compare, negated, actual, policy_values)


def _matches_any(
    compare: Callable[[str, str], bool], negated: bool, actual: list[str], policy_values: list[str]
) -> bool:
    hit = any(compare(a, p) for a in actual for p in policy_values)
    return not hit if negated else hit


def conditions_hold(
    condition: Any, context: Context, substitute: Callable[[str], str | None] | None = None
) -> bool:
    """Whether a statement's Condition block holds in CONTEXT (an absent or empty block always holds).

    `substitute` resolves policy variables in condition values (`${aws:username}`); a value whose variable
    cannot be resolved matches nothing.
    """
    if not condition:
        return True
    if not isinstance(condition, Mapping):
        return False
    for operator, entries in condition.items():
        if not isinstance(entries, Mapping):
            return False
        for key, raw in entries.items():
            values = _values(raw)
            if substitute is not None:
                values = [v for v in (substitute(v) for v in values) if v is not None]
            if not _one_key(str(operator), str(key), values, context):
                return False
    return True
