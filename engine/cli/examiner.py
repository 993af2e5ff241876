"""``sketchface examiner ...``: examiner profiles (add, list, use, export-key, rotate, revoke) and the trust list.

Also :func:`ensure_examiner`, which every command that writes a case calls first: it applies
``--examiner-profile``, and where no profile exists yet it asks who is working (on a terminal) or
stops with a message naming ``sketchface examiner add`` (in scripts), before any work is done.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine import examiners
from engine.cli.output import print_json
from engine.errors import CaseError


def ensure_examiner(args: argparse.Namespace) -> examiners.Profile:
    """The profile this command acts as: ``--examiner-profile``, else the chosen one, else ask (first run)."""
    ref = getattr(args, "examiner_profile", None)
    if ref:
        return examiners.act_as(ref) or examiners.require_current()
    profile = examiners.current()
    if profile is not None:
        return profile
    if not (sys.stdin is not None and sys.stdin.isatty()):
        return examiners.require_current()  # raises NoExaminer with the command to run
    print("No examiner profile exists on this workstation yet. Who is working?", file=sys.stderr)
    name = input("  Display name: ").strip()
    identifier = input("  Agency identifier (badge or staff number): ").strip()
    profile = examiners.add(name, identifier)
    print(f"Created examiner profile {profile.name} ({profile.identifier}), key {profile.fingerprint}.",
          file=sys.stderr)
    return profile


def _show(p: examiners.Profile, current: examiners.Profile | None) -> str:
    mark = "*" if current is not None and current.fingerprint == p.fingerprint else " "
    return f"{mark} {p.name} ({p.identifier})  key {p.fingerprint}  [{p.store}]  since {p.created_at}"


def _cmd_add(args: argparse.Namespace) -> int:
    p = examiners.add(args.name, args.identifier, make_current=not args.no_use)
    print(f"Created examiner profile {p.name} ({p.identifier}); key fingerprint {p.fingerprint}, kept in the "
          f"{'OS keyring' if p.store == 'keyring' else 'passphrase-protected key file in the config folder'}.")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    cur = examiners.current()
    rows = examiners.profiles()
    if args.json:
        print_json({"current": cur.fingerprint if cur else None, "profiles": [p.to_dict() for p in rows]})
        return 0
    if not rows:
        print("No examiner profiles yet. " + examiners.NO_PROFILE_HINT)
    for p in rows:
        print(_show(p, cur))
    return 0


def _cmd_use(args: argparse.Namespace) -> int:
    p = examiners.use(args.profile)
    print(f"Now working as {p.name} ({p.identifier}), key {p.fingerprint}.")
    return 0


def _cmd_export_key(args: argparse.Namespace) -> int:
    data = examiners.export_key(args.profile)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).expanduser().write_text(text + "\n", encoding="utf-8")
        print(f"Wrote the public key of {data['name']} ({data['identifier']}) to {args.out}; fingerprint "
              f"{data['fingerprint']}.")
    else:
        print(text)
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    p = examiners.rotate(args.profile, reason=args.reason or "")
    print(f"{p.name} ({p.identifier}) now signs with key {p.fingerprint}; the old key is revoked from now on "
          "(its earlier signatures stay valid).")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    row = examiners.revoke(args.fingerprint, reason=args.reason or "")
    print(f"Revoked key {row['fingerprint']} of {row.get('name')} ({row.get('identifier')}) as of "
          f"{row['revoked_at']}: its later signatures are findings.")
    return 0


def _cmd_trust(args: argparse.Namespace) -> int:
    if args.trust_command in ("accept", "import") and not args.file:
        raise CaseError(f"'sketchface examiner trust {args.trust_command}' needs the file to read.")
    if args.trust_command == "accept":
        try:
            entry: Any = json.loads(Path(args.file).expanduser().read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CaseError(f"The key file {args.file} cannot be read ({exc}).") from exc
        if not isinstance(entry, dict):
            raise CaseError(f"{args.file} is not an exported examiner key.")
        row = examiners.accept(entry, source=f"key file {Path(args.file).name}")
        print(f"Accepted key {row['fingerprint']} of {row['name']} ({row['identifier']}), by {row['accepted_by']} "
              f"at {row['accepted_at']}.")
    elif args.trust_command == "import":
        rows = examiners.import_agency_file(Path(args.file).expanduser())
        print(f"Accepted {len(rows)} examiner key(s) from {args.file}.")
    else:
        keys = examiners.trusted_keys()
        if args.json:
            print_json({"keys": keys})
            return 0
        for k in keys:
            state = f"REVOKED {k['revoked_at']}" if k.get("revoked_at") else "trusted"
            print(f"{k['fingerprint']}  {k.get('name')} ({k.get('identifier')})  {state}  — {k.get('source')}, "
                  f"accepted by {k.get('accepted_by')} at {k.get('accepted_at')}")
        if not keys:
            print("No examiner keys accepted yet (this workstation's own profiles count as known).")
    return 0


def register(subparsers: Any) -> None:
    """Add ``sketchface examiner ...`` to the main command line."""
    p = subparsers.add_parser("examiner", help="examiner profiles and their signing keys; the trust list")
    sub = p.add_subparsers(dest="examiner_command", metavar="ACTION", required=True)
    sp = sub.add_parser("add", help="create a profile with its own signing key")
    sp.add_argument("--name", required=True, help="display name, as reports print it")
    sp.add_argument("--identifier", "--id", dest="identifier", required=True, help="badge or staff number")
    sp.add_argument("--no-use", action="store_true", help="do not make it the current profile")
    sp.set_defaults(func=_cmd_add)
    sp = sub.add_parser("list", help="list the profiles (* marks the current one)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_list)
    sp = sub.add_parser("use", help="make a profile the current one on this workstation")
    sp.add_argument("profile", help="name, identifier or key fingerprint")
    sp.set_defaults(func=_cmd_use)
    sp = sub.add_parser("export-key", help="write a profile's public key for another workstation's trust list")
    sp.add_argument("profile", nargs="?", help="default: the current profile")
    sp.add_argument("--out", help="file to write (default: print)")
    sp.set_defaults(func=_cmd_export_key)
    sp = sub.add_parser("rotate", help="give a profile a new key; the old one is revoked from now on")
    sp.add_argument("profile", nargs="?", help="default: the current profile")
    sp.add_argument("--reason")
    sp.set_defaults(func=_cmd_rotate)
    sp = sub.add_parser("revoke", help="revoke an examiner key on the trust list")
    sp.add_argument("fingerprint")
    sp.add_argument("--reason")
    sp.set_defaults(func=_cmd_revoke)
    sp = sub.add_parser("trust", help="the trust list of examiner keys: list, accept KEYFILE, import AGENCYFILE")
    sp.add_argument("trust_command", choices=("list", "accept", "import"))
    sp.add_argument("file", nargs="?")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_trust)
