"""The command groups of the insight context; each capability adds its commands."""

from __future__ import annotations

import typer

from parcours.analytics import attribution_cli, metrics_cli, reports_cli, value_cli

analytics_app = typer.Typer(
    help="KPIs, funnels, paths, attribution, cohorts and lifetime value.", no_args_is_help=True
)
export_app = typer.Typer(help="Export data for analytics engines.", no_args_is_help=True)
import_app = typer.Typer(help="Import history from other systems.", no_args_is_help=True)

for module in (metrics_cli, attribution_cli, value_cli, reports_cli):
    module.register(analytics_app, export_app, import_app)
