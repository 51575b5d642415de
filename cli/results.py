"""The results commands: import a platform's ad performance export, and see what won per cell."""

from pathlib import Path

import typer

from cli.console import console, context, out, print_table, user_errors

results_app = typer.Typer(help="Import what ran on the ad platforms.", no_args_is_help=True)


@results_app.command("import")
@user_errors
def results_import(campaign_id: str, report: Path = typer.Argument(..., help="The platform's ad-level export (CSV)."),
                   platform: str = typer.Option(..., "--platform", help="google, meta, linkedin or x."),
                   replace: bool = typer.Option(False, "--replace", help="Replace results already imported for overlapping dates.")):
    """Join an ad performance export to the campaign's creatives (by utm_content in the URL or the
    creative id in the ad name) and store it. The same file twice changes nothing."""
    from adgen.results import import_results

    result = import_results(context(), campaign_id, report, platform, replace=replace)
    if result.already:
        out.print(f"{report.name} was imported before; nothing changed")
    else:
        out.print(f"stored {result.stored} rows" + (f", replaced {result.replaced}" if result.replaced else ""))
    if result.unmatched:
        console.print(f"{len(result.unmatched)} rows match no creative of {campaign_id} (not stored):")
        for r in result.unmatched:
            console.print(f"  row {r.line}: {r.ad}", highlight=False, soft_wrap=True)


@user_errors
def campaign_insights(campaign_id: str, out_file: Path = typer.Option(None, "--out", help="Also write an HTML page with the plot.")):
    """CTR and conversion rate per creative with 95% Wilson intervals, per audience x placement, and
    the winner of each cell where a two-proportion z-test finds the difference significant."""
    from adgen.insights import TEST, cells, render_html, score_correlations

    all_cells = cells(context(), campaign_id)
    if not all_cells:
        raise LookupError(f"no results imported for campaign {campaign_id}; see 'adgen results import'")
    out.print(f"winners only where the {TEST}; intervals are 95% Wilson")
    rows = [("product", "audience", "placement", "creative", "impr.", "clicks", "CTR (95% CI)", "conv. rate (95% CI)", "")]
    for cell in all_cells:
        for c in cell.creatives:
            lo, hi = c.ctr_interval
            clo, chi = c.conversion_interval
            mark = (f"winner (p={cell.p_value:.3g})" if c.id == cell.winner
                    else f"no significant winner (p={cell.p_value:.3g})" if c is cell.creatives[0] else "")
            rows.append((cell.product, cell.audience, cell.placement, c.id, str(c.impressions), str(c.clicks),
                         f"{c.ctr:.2%} ({lo:.2%}-{hi:.2%})", f"{c.conversion_rate:.2%} ({clo:.2%}-{chi:.2%})", mark))
    print_table(rows)
    for name, (rho, n) in score_correlations(all_cells).items():
        out.print(f"score {name} vs CTR: Spearman rho {rho:+.2f} over {n} creatives")
    if out_file:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(render_html(campaign_id, all_cells))
        out.print(str(out_file))
