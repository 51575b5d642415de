"""The results tab: upload an ad platform's performance export for a campaign and see what won.

An upload goes through `adgen.results.import_results`, the function behind `adgen results import`,
once the campaign is looked up for the signed-in user (another advertiser's campaign answers "no
campaign" like one that does not exist). A malformed file is refused whole with the same one line
the command prints, and nothing is written; the same file twice changes nothing; rows that match no
creative of the campaign are listed, not stored. The insights are `adgen.insights`' cells: each
creative's CTR with its 95% Wilson interval, drawn as a plot and listed in a table, and a winner only
where the two-proportion test finds the difference significant.
"""

import html
from io import BytesIO
from pathlib import Path

import gradio as gr
from PIL import Image

from adgen.accounts import campaign_of
from adgen.context import Context
from adgen.insights import TEST, cells, plot, score_correlations
from adgen.results import ResultsError, formats, import_results
from ui.actions import InputError, my_campaigns

PLATFORMS = {"google": "Google Ads", "meta": "Meta Ads Manager", "linkedin": "LinkedIn Campaign Manager", "x": "X Ads"}
COLUMNS = ["product", "audience", "placement", "creative", "impressions", "clicks", "CTR", "CTR 95% interval",
           "conversions", "conversion rate (95% interval)", "verdict"]
NO_RESULTS = "No results imported for this campaign yet: upload a platform's ad-level export above."


def import_export(ctx: Context, user: str, campaign_id: str, path: str | None, platform: str,
                  replace: bool = False) -> str:
    """Store an uploaded export against the user's campaign; returns what happened, in Markdown."""
    with ctx.db() as s:
        campaign_of(s, user, campaign_id)
    if not path:
        raise InputError("Results file: upload the platform's ad-level export (CSV)")
    if platform not in formats():
        raise InputError(f"Platform: {platform!r} is not one of {', '.join(formats())}")
    report = Path(path)
    try:
        result = import_results(ctx, campaign_id, report, platform, replace=replace)
    except ResultsError as e:  # the upload's folder on the server is no business of the user's
        raise InputError(str(e).replace(str(report), report.name)) from None
    if result.already:
        lines = [f"{report.name} was imported before; nothing changed."]
    else:
        lines = [f"Stored {result.stored} rows from {report.name}"
                 + (f", replacing {result.replaced} imported before." if result.replaced else ".")]
    if result.unmatched:
        lines.append("\nRows that match no creative of this campaign (not stored):")
        # a code span shows the ad name or URL as it is, markup and all
        lines += ["- row {}: `{}`".format(r.line, r.ad.replace("`", "'")) for r in result.unmatched]
    return "\n".join(lines)


def campaign_insights(ctx: Context, user: str, campaign_id: str) -> tuple[Image.Image | None, list[list], str]:
    """The plot, a table row per creative, and the verdict of each cell in Markdown."""
    with ctx.db() as s:
        campaign_of(s, user, campaign_id)
    found = cells(ctx, campaign_id)
    if not found:
        return None, [], NO_RESULTS
    rows, verdicts = [], [f"Intervals are 95% Wilson intervals; a cell has a winner only where the {TEST}."]
    for cell in found:
        if len(cell.creatives) == 1:
            verdict = "one creative: nothing to compare"
        elif cell.winner:
            verdict = f"winner **{cell.winner}** (p = {cell.p_value:.3g})"
        else:
            verdict = f"no significant winner (p = {cell.p_value:.3g})"
        verdicts.append(f"- {html.escape(cell.product)} · {html.escape(cell.audience)} · {cell.placement}: {verdict}")
        for c in cell.creatives:
            lo, hi = c.ctr_interval
            clo, chi = c.conversion_interval
            mark = "winner" if c.id == cell.winner else ""
            rows.append([cell.product, cell.audience, cell.placement, c.id, c.impressions, c.clicks, f"{c.ctr:.2%}",
                         f"{lo:.2%} to {hi:.2%}", c.conversions,
                         f"{c.conversion_rate:.2%} ({clo:.2%} to {chi:.2%})", mark])
    verdicts += [f"- score {name} vs CTR: Spearman's rho {rho:+.2f} over {n} creatives"
                 for name, (rho, n) in score_correlations(found).items()]
    return Image.open(BytesIO(plot(found))), rows, "\n".join(verdicts)


def results_tab(ctx: Context, handler) -> None:
    """The tab's components and events, inside the app's Tabs; `handler` is the app's wrapper that
    passes the signed-in user and turns input errors into a message in the page."""

    def campaigns(user, chosen):
        choices = my_campaigns(ctx, user)
        return gr.Dropdown(choices=choices, value=chosen if chosen in {cid for _, cid in choices} else None)

    def show(user, campaign_id):
        if not campaign_id:
            return None, [], "Choose a campaign."
        return campaign_insights(ctx, user, campaign_id)

    def upload(user, campaign_id, report, platform, replace=False):
        summary = import_export(ctx, user, campaign_id, report, platform, replace)
        return summary, *campaign_insights(ctx, user, campaign_id)

    with gr.Tab("Results", id="results") as tab:
        with gr.Row():
            campaign = gr.Dropdown(label="Campaign", choices=[], interactive=True, scale=3, allow_custom_value=True)
            platform = gr.Dropdown(label="Platform", choices=[(v, k) for k, v in PLATFORMS.items()], value="meta",
                                   interactive=True, allow_custom_value=True)
        with gr.Row():
            report = gr.File(label="Ad-level performance export (CSV, as the platform's reporting tool writes it); "
                                   "rows are matched by utm_content in the URL or the creative id in the ad name",
                             file_types=[".csv"], type="filepath", elem_id="results-file", scale=3)
            with gr.Column(scale=1):
                replace = gr.Checkbox(label="Replace results already imported for overlapping dates (--replace)")
                import_btn = gr.Button("Import results", variant="primary")
        summary = gr.Markdown()
        picture = gr.Image(label="CTR per creative with its 95% interval, per cell (the winner in orange)",
                           type="pil", format="png", interactive=False, elem_id="results-plot")
        verdicts = gr.Markdown()
        table = gr.Dataframe(headers=COLUMNS, datatype=["str", "str", "str", "str", "number", "number", "str", "str",
                                                        "number", "str", "str"], type="array", interactive=False, label="Per creative",
                             elem_id="results-table")
    insights_out = [picture, table, verdicts]
    tab.select(handler(campaigns), campaign, campaign, api_name=False, show_progress="hidden")
    campaign.change(handler(show), campaign, insights_out, api_name="insights")
    import_btn.click(handler(upload), [campaign, report, platform, replace], [summary, *insights_out],
                     api_name="import_results")
