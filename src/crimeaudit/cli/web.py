"""CLI verbs for the review workbench: serve, users, verify."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import typer

from crimeaudit.cli.common import (
    UserError,
    console,
    err_console,
    handle_errors,
    open_project,
    print_json,
    styled,
)

DB_HELP = "PostgreSQL URL (postgresql://user@host/db) for accounts, sessions and the log; " \
          "default: DIR/workbench.sqlite."
SERVE_DB_HELP = "PostgreSQL URL (postgresql://user@host/db) for the team: accounts, sessions, " \
                "the log and the audit decisions (moved there once and recorded in " \
                "project.yaml); default: DIR/workbench.sqlite and the project store."


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_password(from_stdin: bool) -> str:
    from crimeaudit.web.passwords import check_strength

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if problem := check_strength(password):
        raise UserError(problem)
    return password


def register(app: typer.Typer) -> None:
    users = typer.Typer(help="Workbench accounts: add, list, set a password, disable.",
                        no_args_is_help=True)
    app.add_typer(users, name="users")

    @app.command("serve")
    def serve(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by "
                                                   "default: put TLS in front for a team)."),
        port: int = typer.Option(8765, help="Port to listen on."),
        db: str = typer.Option(None, "--db", help=SERVE_DB_HELP),
        session_minutes: float = typer.Option(60.0, help="A session ends after this many "
                                                         "minutes without use."),
        secure_cookies: bool = typer.Option(False, help="Mark the session cookie Secure even "
                                                        "on plain HTTP (behind a TLS proxy)."),
    ) -> None:
        """Run the review workbench in the browser on a project."""
        from crimeaudit.web import serve as run

        with handle_errors():
            if not _loopback(host) and not secure_cookies:
                err_console.print(styled(("warning:", "yellow"),
                                         f" listening on {host} without TLS: passwords and "
                                         "sessions cross the network in clear. Put a TLS "
                                         "proxy in front and pass --secure-cookies."))
            console.print(f"Workbench on http://{host}:{port}/ (Ctrl+C stops it)")
            run(directory, host=host, port=port, db=db, session_minutes=session_minutes,
                secure_cookies=secure_cookies)

    @users.command("add")
    def add(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        name: str = typer.Argument(..., help="The user name to log in with."),
        role: str = typer.Option(..., help="auditor, lead or viewer."),
        password_stdin: bool = typer.Option(False, "--password-stdin",
                                            help="Read the password from standard input."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Add a workbench account (the password is asked for, or read from stdin)."""
        from crimeaudit.web.passwords import hash_password
        from crimeaudit.web.store import open_store

        with handle_errors():
            store = open_store(directory, db)
            if store.user(name):
                raise UserError(f"user {name!r} already exists; set a new password with "
                                f"crimeaudit users passwd {directory} {name}")
            store.add_user(name, role, hash_password(_read_password(password_stdin)))
            store.log(None, "user_added", name=name, role=role)
            console.print(f"Added {role} {name} to {store.describe()}")

    @users.command("passwd")
    def passwd(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        name: str = typer.Argument(..., help="The user."),
        password_stdin: bool = typer.Option(False, "--password-stdin",
                                            help="Read the password from standard input."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Set a new password (the user's open sessions end)."""
        from crimeaudit.web.passwords import hash_password
        from crimeaudit.web.store import open_store

        with handle_errors():
            store = open_store(directory, db)
            store.set_password(name, hash_password(_read_password(password_stdin)))
            store.log(None, "password_set", name=name)
            console.print(f"New password set for {name}")

    @users.command("disable")
    def disable(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        name: str = typer.Argument(..., help="The user."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Disable an account (its decisions stay; it can no longer log in)."""
        from crimeaudit.web.store import open_store

        with handle_errors():
            store = open_store(directory, db)
            store.set_active(name, False)
            store.log(None, "user_disabled", name=name)
            console.print(f"Disabled {name}")

    @users.command("list")
    def list_users(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """List the accounts and their roles."""
        from crimeaudit.web.store import open_store

        with handle_errors():
            for u in open_store(directory, db).users():
                typer.echo(f"{u.name}\t{u.role}\t{'active' if u.active else 'disabled'}")

    @app.command("verify")
    def verify(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (exit "
                                                           "1 still means broken)."),
    ) -> None:
        """Check the decisions' hash chain; name the first broken row (exit 1 if broken)."""
        from crimeaudit.audit.decisions import decisions_location, verify_chain

        with open_project(directory) as p:
            checked, broken = verify_chain(p)
            where = decisions_location(p)
        if as_json:
            print_json({"intact": broken is None, "checked": checked, "broken_at": broken,
                        "location": str(where)})
            if broken is not None:
                raise typer.Exit(1)
            return
        if broken is not None:
            err_console.print(styled(("broken:", "bold red"),
                                     f" the decision chain breaks at decision_id {broken} "
                                     f"(row {checked}): a decision was edited, deleted, "
                                     "inserted or reordered"), highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        console.print(f"Decision chain intact: {checked:,} decisions checked ({where}).",
                      highlight=False, soft_wrap=True)
