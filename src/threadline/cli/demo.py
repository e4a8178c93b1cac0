"""`threadline demo`: load realistic multi-channel demo customers."""

from __future__ import annotations

import typer

from threadline.cli.common import console, database, one_line_errors
from threadline.config import get_settings
from threadline.demo import LOCALES, generate_demo


@one_line_errors
def demo(
    customers: int = typer.Option(200, help="How many customers to generate."),
    seed: int = typer.Option(7, help="Random seed: the same seed and locale load the same customers once."),
    locale: str = typer.Option("en_US", help=f"Names, phones and addresses of: {', '.join(LOCALES)}."),
) -> None:
    """Load demo customers with histories across web, app, store, call center, e-mail, SMS, social, chat."""
    with database() as db:
        report = generate_demo(
            db, get_settings(), customers=customers, seed=seed, locale=locale, progress=True
        )
    console.print(f"loaded demo data: {report}", highlight=False, soft_wrap=True)
