"""``sketchface server ...`` and the server side of ``sketchface gallery ...``.

``server add/list/remove/test`` manage profiles (:mod:`engine.servers`); ``server init`` and
``server grant`` are for the server's administrator. The ``gallery`` actions ``create``, ``add``,
``info`` and ``list`` take ``--server PROFILE`` (the same command on a server gallery), ``gallery push
LOCAL --server PROFILE`` moves a local gallery up without re-embedding: :mod:`engine.cli.gallery`
declares those options and calls the ``gallery_*`` handlers here. A search over server galleries is the
one search of the workstation (``search --server-gallery PROFILE:NAME``, :mod:`engine.cli.search`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

import psycopg

from engine import servers
from engine.cli.console import progress_bar, sigint_cancels
from engine.cli.output import plain_value, print_json
from engine.errors import GalleryError
from engine.gallery import open_gallery
from engine.gallery.pg import PgGallery, index_matches_table, install_schema
from engine.gallery.pg.admin import check_examiner, create_examiner
from engine.gallery.pg.push import add_to_server, push_gallery


def _server_gallery(profile_name: str, ref: str | None = None) -> Any:
    profile = servers.get_profile(profile_name)
    return profile, servers.conninfo(profile), (PgGallery.open(servers.conninfo(profile), ref, profile.name)
                                               if ref else None)


# -- server profiles ---------------------------------------------------------------------------
def _server_add(args: argparse.Namespace) -> int:
    password = _read_password(f"Password for {args.name} (empty: none): ") if args.ask_password else None
    profile, note = servers.add_profile(args.name, args.url, args.unit or "", password or None)
    if args.json:
        print_json({"name": profile.name, "url": profile.url, "unit": profile.unit, "password": note})
    else:
        print(f"Saved server '{profile.name}' ({profile.where}, sslmode={profile.sslmode or 'default'}); {note}.")
    return 0


def _server_list(args: argparse.Namespace) -> int:
    profiles = servers.load_profiles()
    if args.json:
        print_json([{"name": p.name, "url": p.url, "unit": p.unit, "sslmode": p.sslmode} for p in profiles.values()])
        return 0
    if not profiles:
        print("No server profiles. Add one: sketchface server add NAME postgresql://USER@HOST/DB")
    for p in profiles.values():
        print(f"{p.name:<20} {p.user}@{p.where}  sslmode={p.sslmode or 'default'}  unit={p.unit or '-'}")
    return 0


def _server_remove(args: argparse.Namespace) -> int:
    servers.remove_profile(args.name)
    print(f"Removed server profile '{args.name}' (and its keyring password).")
    return 0


def _server_test(args: argparse.Namespace) -> int:
    report = servers.test_profile(servers.get_profile(args.name))
    if args.json:
        print_json(report)
    else:
        for key, value in report.items():
            print(f"{key:>16}: {plain_value(value)}")
    return 0 if report["pgvector"] and report["schema_installed"] else 1


def _server_init(args: argparse.Namespace) -> int:
    install_schema(servers.conninfo(servers.get_profile(args.name)))
    print(f"Gallery schema installed on '{args.name}'.")
    return 0


def _read_password(prompt: str) -> str:
    """A password typed at the terminal, or one line of standard input when that is not a terminal (scripts).

    Standard input that is not a terminal is read as it is (getpass would turn to the controlling terminal,
    or warn and end in EOFError when there is none). Nothing there gives "", for the caller to refuse clearly.
    """
    if sys.stdin is None or not sys.stdin.isatty():
        return (sys.stdin.readline() if sys.stdin is not None else "").rstrip("\r\n")
    try:
        return getpass.getpass(prompt)
    except EOFError:
        return ""


def _new_password(user: str) -> str:
    """The new login's password; refused when none was given (no terminal and nothing on standard input)."""
    password = _read_password(f"New password for {user}: ")
    if not password:
        raise GalleryError(f"No password was given for {user}; nothing was changed.",
                           hint="Run 'sketchface server grant' in a terminal and type it, or give it as one line "
                                "on standard input.")
    return password


def _server_grant(args: argparse.Namespace) -> int:
    profile = servers.get_profile(args.name)
    check_examiner(args.user, args.unit)  # bad names are refused before a password is asked for
    password = _new_password(args.user)
    create_examiner(servers.conninfo(profile), args.user, password, args.unit)
    print(f"{args.user} may now use the galleries of unit(s) {', '.join(args.unit)}.")
    return 0


def _server_check(args: argparse.Namespace) -> int:
    conn = servers.conninfo(servers.get_profile(args.name))
    gallery = PgGallery.open(conn, args.gallery, args.name)
    report = index_matches_table(conn, gallery.id)
    if args.json:
        print_json(report)
    else:
        print(("OK" if report["ok"] else "NOT CONSISTENT") + f": {report['reached']} of {report['table']} stored "
              f"face(s) reached through the HNSW index, {report['foreign']} foreign, index used: {report['uses_index']}.")
    return 0 if report["ok"] else 1


# -- gallery actions on a server ------------------------------------------------------------------
def _gallery_create(args: argparse.Namespace) -> int:
    profile, conn, _ = _server_gallery(args.server)
    unit = args.unit or profile.unit
    if not unit:
        raise GalleryError("Which unit owns the new gallery?", hint="Give --unit UNIT or set one in the profile.")
    g = PgGallery.create(conn, args.name, unit, profile.name)
    info = g.info()
    if args.json:
        print_json(info.to_dict())
    else:
        print(f"Created server gallery '{info.name}' (id {info.id}) on '{profile.name}' for unit {unit}.")
    return 0


def _gallery_info(args: argparse.Namespace) -> int:
    _, _, g = _server_gallery(args.server, args.gallery)
    info = g.info().to_dict()
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:>16}: {plain_value(value)}")
    return 0


def _gallery_list(args: argparse.Namespace) -> int:
    _, conn, _ = _server_gallery(args.server)
    rows = PgGallery.list_all(conn)
    if args.json:
        print_json([{"id": a, "name": b, "content_version": c} for a, b, c in rows])
    for gid, name, version in [] if args.json else rows:
        print(f"{gid}  {name:<30} v{version}")
    return 0


def _gallery_add(args: argparse.Namespace) -> int:
    profile, _, g = _server_gallery(args.server, args.gallery)
    with sigint_cancels() as token, progress_bar(f"Importing into {g.name}") as bar:
        report, pushed = add_to_server(g, [Path(p) for p in args.paths], profile.name, progress=bar, cancel=token)
    doc = {**report.to_dict(), "pushed": pushed.inserted, "already_on_server": pushed.skipped,
           "faces_pushed": pushed.faces}
    if args.json:
        print_json(doc)
    else:
        print(f"{report.scanned} file(s) scanned: {report.faces} face(s) embedded here; {pushed.inserted} photo(s) "
              f"sent to '{profile.name}', {pushed.skipped} already there.")
    return 1 if report.failed else 0


def _gallery_push(args: argparse.Namespace) -> int:
    profile, conn, _ = _server_gallery(args.server)
    with open_gallery(args.local) as local:
        target = args.to or local.name
        try:
            remote = PgGallery.open(conn, target, profile.name)
        except GalleryError:
            unit = args.unit or profile.unit
            if not unit:
                raise
            remote = PgGallery.create(conn, target, unit, profile.name)
        with sigint_cancels() as token, progress_bar(f"Pushing {local.name}") as bar:
            report = push_gallery(local, remote, progress=bar, cancel=token)
    doc = {"gallery": remote.id, "server": profile.name, "inserted": report.inserted, "skipped": report.skipped,
           "faces": report.faces, "content_version": remote.content_version}
    if args.json:
        print_json(doc)
    else:
        print(f"Pushed {report.inserted} photo(s) ({report.faces} face(s)) to '{remote.name}' on '{profile.name}';"
              f" {report.skipped} were already there. Content version {doc['content_version']}.")
    return 0


def _guarded(fn: Any) -> Any:
    """Turn a server's refusal (psycopg error) into a one-line GalleryError the CLI prints."""
    def run(*a: Any) -> int:
        try:
            return int(fn(*a))
        except psycopg.Error as exc:
            primary = exc.diag.message_primary if exc.diag is not None else None
            raise GalleryError(f"The gallery server refused: {primary or exc}.",
                               hint="Check the profile ('sketchface server test'), that the schema is installed "
                                    "('sketchface server init') and that your unit may use this gallery.") from exc
    return run


def register(subparsers: Any) -> None:
    """Add ``server`` (``gallery`` and ``search`` declare their own server options)."""
    p = subparsers.add_parser("server", help="gallery servers (PostgreSQL + pgvector): profiles and setup")
    acts = p.add_subparsers(dest="server_command", metavar="ACTION", required=True)

    def action(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        a = acts.add_parser(name, help=help_, description=help_)
        a.add_argument("--json", action="store_true", help="print one JSON document for scripts")
        a.set_defaults(func=_guarded(func))
        return a

    a = action("add", _server_add, "save a server profile; a password in the URL goes to the OS keyring")
    a.add_argument("name")
    a.add_argument("url", help="postgresql://USER[:PASSWORD]@HOST:PORT/DB[?sslmode=verify-full&sslrootcert=CA]"
                               " or postgresql://USER@/DB?host=/socket/dir")
    a.add_argument("--unit", help="default unit for galleries created through this profile")
    a.add_argument("--ask-password", action="store_true", help="type the password (kept in the OS keyring)")
    action("list", _server_list, "list server profiles (never passwords)")
    action("remove", _server_remove, "forget a server profile and its keyring password").add_argument("name")
    action("test", _server_test, "connect and report versions, TLS and your units").add_argument("name")
    action("init", _server_init, "administrator: install the gallery schema on the server").add_argument("name")
    a = action("check", _server_check, "administrator: check that a gallery's HNSW index reaches every stored face")
    a.add_argument("name")
    a.add_argument("gallery")
    a = action("grant", _server_grant, "administrator: create an examiner login and add it to units")
    a.add_argument("name")
    a.add_argument("user")
    a.add_argument("unit", nargs="+")


# The server side of ``gallery create/info/list/add/push --server PROFILE``: ``engine.cli.gallery``
# declares those options and calls these (a server's refusal becomes one line, as for ``server``).
gallery_create = _guarded(_gallery_create)
gallery_info = _guarded(_gallery_info)
gallery_list = _guarded(_gallery_list)
gallery_add = _guarded(_gallery_add)
gallery_push = _guarded(_gallery_push)
