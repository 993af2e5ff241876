"""``sketchface case witness | witnesses``: record a witness's description in the case, and list them.

A front-end over :mod:`engine.cases.witness`, added to the ``case`` parser by :mod:`engine.cli.cases`
with that parser's own ``add`` helper (so ``--user`` and ``--examiner-profile`` work as on every
other case write). ``sketchface lineup build --witness W`` then takes the line-up's description from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from engine.cases import witness as witness_records
from engine.cli.output import print_json
from engine.errors import CaseError


def parse_fields(items: list[str]) -> dict[str, str]:
    """``['sex=male', 'age_band=30-39']`` -> a dict, or CaseError naming the bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CaseError(f"A described feature is FIELD=VALUE (e.g. sex=male, age_band=30-39, hair=short dark), "
                            f"not {item!r}.")
        out[key.strip()] = value.strip()
    return out


def register(add: Callable[..., argparse.ArgumentParser], open_case: Callable[[str], Any]) -> None:
    """Add the two commands with the ``case`` parser's own ``add`` helper and case opener."""

    def witness(args: argparse.Namespace) -> int:
        fields = parse_fields(args.describe or [])
        with open_case(args.case) as case:
            w = witness_records.record_witness(case, args.name, fields, taken_on=args.taken_on,
                                               taken_by=args.taken_by, user=args.user)
        print(f"Witness description {w.id} ({w.reference}) recorded: "
              + ", ".join(f"{k}={v}" for k, v in w.fields.items()) + f"; taken {w.taken_on} by {w.taken_by}.")
        return 0

    def witnesses(args: argparse.Namespace) -> int:
        with open_case(args.case) as case:
            rows = witness_records.list_witnesses(case)
        if args.json:
            print_json([w.to_dict() for w in rows])
            return 0
        if not rows:
            print("No witness description in this case.")
        for w in rows:
            print(f"{w.label()} by {w.taken_by}: " + ", ".join(f"{k}={v}" for k, v in w.fields.items()))
        return 0

    sp = add("witness", witness, "record a witness's description of the culprit (line-up fillers fit it)")
    sp.add_argument("--name", required=True, help="the witness's name or reference")
    sp.add_argument("--describe", action="append", required=True, metavar="FIELD=VALUE",
                    help="a described feature (repeatable): sex, age_band, age_range, height, build, hair, or any "
                         "other field")
    sp.add_argument("--taken-on", metavar="YYYY-MM-DD", help="when the description was taken (default: today)")
    sp.add_argument("--taken-by", help="who took it (default: the acting examiner)")
    add("witnesses", witnesses, "list the case's witness descriptions", json_=True, user=False)
