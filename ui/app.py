"""The advertiser app: `build_app(settings)` makes the Gradio Blocks, `serve` launches it safely.

Four tabs follow the work: the brand kit, the campaign builder, the review of a campaign
(progress per job, a gallery filtered by audience, placement and status, one creative with its
checks and lineage, the review actions and the export), and its results once it ran (ui/results.py). Handlers are thin: they take the user from
the request and call `ui.actions`, which checks on the server that the user may touch every id.
Per-user data lives only in the browser session (component values and `gr.State`), never here.
"""

import html
import inspect
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from adgen.accounts import AccessError, SignInLimiter  # noqa: E402
from adgen.context import Context  # noqa: E402
from adgen.export import ExportError  # noqa: E402
from adgen.jobs import MAX_LOGO_BYTES  # noqa: E402
from adgen.languages import language_label  # noqa: E402
from adgen.models import ModelError  # noqa: E402
from adgen.review import ReviewError  # noqa: E402
from adgen.settings import Settings  # noqa: E402
from adgen.spec import MAX_VARIANTS, SpecError  # noqa: E402
from ui import actions  # noqa: E402
from ui.guard import Guard, SignIn  # noqa: E402
from ui.jobs import look_after  # noqa: E402
from ui.results import results_tab  # noqa: E402

POLL_SECONDS = 2.0
# Uploads larger than this never reach a handler; logos have their own, smaller limit
# (MAX_LOGO_BYTES), checked in the handler so an oversized logo gets a message naming the field.
MAX_UPLOAD = "8mb"
# Every handler is a short read or write of the records (generation runs in the runner process),
# so many can run at once; the queue bounds how many requests may wait. See README, "Web app".
CONCURRENCY, QUEUE_SIZE = 16, 256
USER_ERRORS = (actions.InputError, AccessError, SpecError, ReviewError, ExportError, ModelError, LookupError)

CSS = """
.badge {display:inline-block; padding:2px 8px; margin:2px; border-radius:10px; font-size:0.85em;}
.badge.ok {background:#E3F4E8; color:#1E6B34;} .badge.fail {background:#FBE4E1; color:#9B2C1F;}
.jobs {width:100%; border-collapse:collapse; font-size:0.9em;} .jobs td, .jobs th {padding:3px 8px; text-align:left;}
.jobs tr:nth-child(even) {background:#F6F6F8;}
.bar {height:10px; background:#EEE; border-radius:5px; overflow:hidden; margin:6px 0;}
.bar > div {height:100%; background:#D94F30;}
.swatch {display:inline-block; width:28px; height:28px; border-radius:6px; margin-right:6px; border:1px solid #ccc;}
"""


def _user(request: gr.Request | None) -> str:
    user = getattr(request, "username", None)
    if not user:
        raise gr.Error("Sign in first.")
    return user


def handler(fn: Callable) -> Callable:
    """Pass the signed-in user to `fn` and turn the library's input errors into a message in the page.
    Gradio hands the request to a leading parameter annotated gr.Request; the inputs follow it, named
    as `fn` names them (so the API shows those names, and an input with a default may be left out)."""

    def wrapper(request: gr.Request, *args):
        try:
            return fn(_user(request), *args)
        except USER_ERRORS as e:
            # args[0], not str(e): str() of a KeyError wraps the message in quotes
            raise gr.Error(str(e.args[0]) if e.args else str(e), print_exception=False) from None

    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    inputs = list(inspect.signature(fn).parameters.values())[1:]  # after the user
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    wrapper.__signature__ = inspect.Signature([request, *inputs])
    return wrapper


def _badges(compliance: dict) -> str:
    if compliance["ok"]:
        out = "<span class='badge ok'>passes all checks</span>"
    else:
        out = "".join(f"<span class='badge fail'>{html.escape(i)}</span>" for i in compliance["issues"])
    return out


def _progress_html(state: dict) -> str:
    jobs = state["jobs"]
    done = sum(j["status"] in ("done", "failed") for j in jobs)
    made = len(state["creatives"])
    rows = "".join(
        f"<tr><td>{html.escape(j['product'])}</td><td>{html.escape(j['audience'])} · {html.escape(language_label(j['language']))}"
        f"</td><td>{html.escape(j['placement'])}</td>"
        f"<td>{j['status']}{' (regenerating ' + html.escape(j['replaces']) + ')' if j['replaces'] else ''}"
        f"{': ' + html.escape(j['error']) if j['error'] else ''}</td></tr>"
        for j in jobs
    )
    pct = 100 * done // max(len(jobs), 1)
    return (f"<b>{html.escape(state['name'])}</b>: {state['status']}, {done} of {len(jobs)} jobs finished, "
            f"{made} creatives<div class='bar'><div style='width:{pct}%'></div></div>"
            f"<table class='jobs'><tr><th>product</th><th>audience</th><th>placement</th><th>job</th></tr>{rows}</table>")


def _score_line(scores: dict | None) -> str:
    """The overall score and its components, beside the creative (README "Scores")."""
    if not scores:
        return ""
    parts = " · ".join(f"{k} {v:g}" for k, v in scores["components"].items())
    flags = "".join(f"  \n⚠ {html.escape(leak)}" for leak in scores["role_leaks"])
    return f"  \nscore **{scores['overall']}**/100: {parts}{flags}"


def _texts(texts: list[str], language: str | None = None) -> str:
    """Texts for a Markdown view, each set in its own direction (dir=auto: Arabic and Hebrew read
    from the right, a Latin name inside them from the left)."""
    lang = f" lang='{html.escape(language)}'" if language else ""
    return " · ".join(f"<span{lang} dir='auto'>{html.escape(t)}</span>" for t in texts)


def _swatches(colors: list[str]) -> str:
    return "".join(f"<span class='swatch' style='background:{html.escape(c)}' title='{html.escape(c)}'></span>"
                   for c in colors)


def build_app(settings: Settings) -> gr.Blocks:
    """The whole app for one server. Only the settings and the shared database/storage handles are
    held here; everything about a user comes from the request or the browser session."""
    ctx = Context(settings)
    placements = actions.placement_choices()
    exports = Path(tempfile.mkdtemp(prefix="adgen-ui-exports-"))
    picture_folder = Path(tempfile.mkdtemp(prefix="adgen-ui-pictures-"))

    # ----- handlers (each gets the signed-in user first) -----

    def load(user):
        brands = actions.my_brands(ctx, user)
        campaigns = actions.my_campaigns(ctx, user)
        first = brands[0][1] if brands else None
        return (f"Signed in as **{user}**", gr.Dropdown(choices=brands, value=first),
                gr.Dropdown(choices=campaigns, value=campaigns[0][1] if campaigns else None))

    def show_brand(user, brand_id):
        if not brand_id:
            return "", "", "", "", None
        kit = actions.brand_kit(ctx, user, brand_id)
        return (kit["voice"], ", ".join(kit["banned_terms"]), ", ".join(kit["colors"]), _swatches(kit["colors"]),
                actions.logo_image(ctx, user, brand_id))

    def save_brand(user, brand_id, voice, banned, colors, logo):
        kit = actions.save_brand_kit(ctx, user, brand_id, voice, banned, colors, logo)
        gr.Info(f"Brand kit of {kit['name']} saved.")
        return _swatches(kit["colors"]), actions.logo_image(ctx, user, brand_id), None

    def started(user, campaign_id):
        gr.Info("Campaign recorded; generating in the background.")
        return (gr.Dropdown(choices=actions.my_campaigns(ctx, user), value=campaign_id), gr.Tabs(selected="review"),
                gr.Timer(active=True))

    def create(user, brand_id, name, products, audiences, chosen, variants, seed, text_adapter, image_adapter,
               photos=None, copy_by="model"):
        campaign_id = actions.create_from_form(ctx, user, brand_id, name, products, audiences, chosen, variants, seed,
                                               text_adapter, image_adapter, photos, copy_by)
        return started(user, campaign_id)

    def upload(user, brand_id, spec_file, photos=None):
        return started(user, actions.create_from_upload(ctx, user, brand_id, spec_file, photos))

    def preview_photos(user, photos, products):
        return actions.photo_previews(user, photos, products)

    def refresh(user, campaign_id, audience, placement_name, status, sort, min_score):
        if not campaign_id:
            return "Choose a campaign.", [], [], gr.Dropdown(), gr.Dropdown(), gr.Timer(active=False)
        state = actions.campaign_state(ctx, user, campaign_id)
        views = actions.gallery(ctx, state, audience, placement_name, status, picture_folder, sort, min_score)
        running = any(j["status"] in ("pending", "running") for j in state["jobs"])
        if running:
            look_after(campaign_id, ctx)
        audiences = [("all", "all")] + sorted({(f"{j['audience']} · {language_label(j['language'])}", j["audience"])
                                               for j in state["jobs"]})
        names = ["all"] + sorted({j["placement"] for j in state["jobs"]})
        return (_progress_html(state), [(v.image, v.caption) for v in views], [v.id for v in views],
                gr.Dropdown(choices=audiences), gr.Dropdown(choices=names), gr.Timer(active=running))

    def detail(user, creative_id):
        if not creative_id:
            return [], "", "", "", [], gr.Dropdown(choices=[]), "", gr.Textbox(rtl=False), None
        d = actions.creative_detail(ctx, user, creative_id, picture_folder)
        copy_md = "\n".join(f"- **{k}**: " + _texts(v, d["language"]) for k, v in d["copy"].items())
        head = (f"**{d['id']}**: {d['product']} · {d['audience']} · {language_label(d['language'])} · {d['placement']} · "
                f"status **{d['status']}**") + _score_line(d["scores"])
        return ([(d["image"], d["id"])], head, copy_md, json.dumps(d["lineage"], indent=2, ensure_ascii=False), d["reviews"],
                gr.Dropdown(choices=d["fields"], value=d["fields"][0] if d["fields"] else None), _badges(d["compliance"]),
                gr.Textbox(rtl=d["direction"] == "rtl"),  # an edit is typed in the audience's direction
                {"id": d["id"], "version": d["version"]})

    def shown(seen, creative_id):
        """The version of the creative the page showed, when it is the one acted on."""
        return seen["version"] if seen and seen.get("id") == creative_id else None

    def after(user, creative_id):
        return creative_id, {"id": creative_id, "version": actions.version_of(ctx, user, creative_id)}

    def show_alternatives(user, creative_id):
        alts = actions.creative_alternatives(ctx, user, creative_id) if creative_id else []
        choices = [(f"{i}: score {a['scores']['overall']}", i) for i, a in enumerate(alts)]
        lines = [f"{i}. **{a['scores']['overall']}**: " + _texts([t for ts in a["copy"].values() for t in ts])
                 for i, a in enumerate(alts)]
        return gr.Dropdown(choices=choices, value=None), "\n".join(lines) or "No alternatives (one candidate was written)."

    def do_swap(user, creative_id, alternative, seen):
        result = actions.swap_in(ctx, user, creative_id, alternative, shown(seen, creative_id))
        if result["ok"]:
            gr.Info("Swapped in, re-rendered and re-checked: passes its checks. Approve it again to export it.")
        else:
            gr.Warning("Swapped in and re-rendered, but it fails its checks: " + "; ".join(result["issues"]))
        return after(user, creative_id)

    def select(ids, evt: gr.SelectData):
        if evt.index is None or evt.index >= len(ids):
            return ""
        return ids[evt.index]

    def do_approve(user, creative_id, seen):
        actions.approve_one(ctx, user, creative_id, shown(seen, creative_id))
        gr.Info(f"Approved {creative_id}.")
        return after(user, creative_id)

    def do_reject(user, creative_id, reason, seen):
        actions.reject_one(ctx, user, creative_id, reason, shown(seen, creative_id))
        gr.Info(f"Rejected {creative_id}.")
        return after(user, creative_id)

    def do_edit(user, creative_id, field, index, text, seen):
        result = actions.edit_copy(ctx, user, creative_id, field, index, text, shown(seen, creative_id))
        if result["ok"]:
            gr.Info("Edited, re-rendered and re-checked: passes its checks. Approve it again to export it.")
        else:
            gr.Warning("Edited and re-rendered, but it fails its checks: " + "; ".join(result["issues"]))
        return after(user, creative_id)

    def do_regenerate(user, creative_id, seed, seen):
        job_id = actions.regenerate_one(ctx, user, creative_id, seed, shown(seen, creative_id))
        gr.Info(f"Regenerating as {job_id}-0; the old creative is rejected and named in the new one's lineage.")
        return gr.Timer(active=True)

    def do_approve_all(user, campaign_id):
        n = actions.approve_remaining(ctx, user, campaign_id)
        gr.Info(f"Approved {n} creatives.")
        return campaign_id

    def do_export(user, campaign_id):
        return str(actions.export_zip(ctx, user, campaign_id, exports))

    # ----- layout -----

    # Pictures and export zips that Gradio caches to serve them are deleted after an hour.
    with gr.Blocks(title="adgen: ad creatives", delete_cache=(600, 3600)) as app:
        with gr.Row():
            gr.Markdown("# adgen\nBrand-tuned ad creatives, laid out per placement, checked and reviewed.")
            who = gr.Markdown()
            gr.Button("Sign out", link="/logout", size="sm", scale=0)
        # Ids are checked by the handlers against the signed-in user, not by Gradio against the
        # choices a session was shown: allow_custom_value keeps that check the one that decides.
        brand = gr.Dropdown(label="Brand", choices=[], interactive=True, allow_custom_value=True)
        with gr.Tabs() as tabs:
            with gr.Tab("Brand kit", id="brand"):
                with gr.Row():
                    with gr.Column(scale=2):
                        voice = gr.Textbox(label="Voice", placeholder="warm, witty, never pushy", lines=2)
                        banned = gr.Textbox(label="Banned terms", placeholder="cheap, guarantee (comma-separated)")
                        colors = gr.Textbox(label="Colours", placeholder="#3B2A20, #F2E8DC, #C8553D (primary, light, accent)")
                        swatches = gr.HTML()
                    with gr.Column(scale=1):
                        logo_now = gr.Image(label="Current logo", interactive=False, height=160)
                        logo = gr.File(label=f"New logo (PNG, JPEG or WebP, up to {MAX_LOGO_BYTES // 1024**2} MB)",
                                       file_types=["image"], type="filepath", elem_id="logo")
                save = gr.Button("Save brand kit", variant="primary")
            with gr.Tab("New campaign", id="build"):
                with gr.Row():
                    name = gr.Textbox(label="Campaign name", placeholder="spring-launch (lower-case, digits, hyphens)")
                    variants = gr.Slider(1, MAX_VARIANTS, value=2, step=1, label="Variants per product x audience x placement")
                    seed = gr.Number(label="Seed", value=0, precision=0, minimum=0)
                products = gr.Dataframe(
                    [["", "", "", "", ""]], headers=["name", "description", "benefits (comma-separated)", "url",
                                                     "photo (an uploaded file's name)"],
                    datatype="str", type="array", column_count=5, interactive=True, label="Products", elem_id="products",
                )
                with gr.Accordion("Product photos (optional): the product is kept pixel-exact, the scene painted around it",
                                  open=False), gr.Row():
                    photos = gr.File(label="Product photos (PNG, JPEG or WebP, up to 8 MB each); name each in its "
                                           "product's photo column. A PNG with alpha is used as cut out.",
                                     file_count="multiple", file_types=["image"], type="filepath", elem_id="photos")
                    cutouts = gr.Gallery(label="What each cut-out keeps (photo | kept over a checkerboard); if it is "
                                               "wrong, upload a PNG with alpha instead", columns=2, height=280,
                                         object_fit="contain", format="png", elem_id="cutouts")
                audiences = gr.Dataframe(
                    [["", "", "en"]], headers=["name (slug)", "persona", "language (en, de, ja, pt-BR, ar, ...)"],
                    datatype="str", type="array", column_count=3, interactive=True,
                    label="Audiences: who they are, what they want and the language their ads are in", elem_id="audiences",
                )
                copy_by = gr.Radio(
                    [("written by the text model", "model"),
                     ("English drafts that reviewers replace with their translation", "edits")],
                    value="model", label="Copy in each audience's language (the offline default model writes English only)",
                    elem_id="copy_by",
                )
                chosen = gr.CheckboxGroup(choices=placements, label="Placements")
                with gr.Accordion("Brand adapters (optional)", open=False), gr.Row():
                    text_adapter = gr.Textbox(label="Text adapter", placeholder="brand/text@v1")
                    image_adapter = gr.Textbox(label="Image adapter", placeholder="brand/image@v1")
                create_btn = gr.Button("Create campaign and generate", variant="primary")
                with gr.Accordion("Or upload a campaign spec (YAML)", open=False):
                    spec_file = gr.File(label="Campaign spec (its products' images name photos uploaded under Product photos)",
                                        file_types=[".yaml", ".yml"], type="filepath")
                    upload_btn = gr.Button("Create from spec and generate")
            with gr.Tab("Review", id="review"):
                with gr.Row():
                    campaign = gr.Dropdown(label="Campaign", choices=[], interactive=True, scale=3, allow_custom_value=True)
                    audience = gr.Dropdown(label="Audience", choices=["all"], value="all", interactive=True,
                                           allow_custom_value=True)
                    placement_f = gr.Dropdown(label="Placement", choices=["all"], value="all", interactive=True,
                                              allow_custom_value=True)
                    status = gr.Dropdown(label="Status", choices=["all", "pending", "approved", "rejected"], value="all",
                                         interactive=True)
                    sort = gr.Dropdown(label="Order", choices=[("as made", "id"), ("best score first", "score")],
                                       value="id", interactive=True)
                    min_score = gr.Number(label="Minimum score", value=0, precision=0, minimum=0, maximum=100)
                progress = gr.HTML()
                with gr.Row():
                    with gr.Column(scale=3):
                        pictures = gr.Gallery(label="Creatives", columns=4, height=520, object_fit="contain",
                                              allow_preview=False, elem_id="gallery")
                        with gr.Row():
                            approve_all = gr.Button("Approve all remaining that pass")
                            export_btn = gr.Button("Download export bundle (approved)", variant="primary")
                        bundle = gr.File(label="Export bundle", interactive=False, elem_id="bundle", height=90)
                    with gr.Column(scale=2):
                        creative = gr.Textbox(label="Selected creative", interactive=False)
                        head = gr.Markdown()
                        badges = gr.HTML()
                        # a one-picture gallery, not gr.Image: an Image would fetch an S3 URL on the server,
                        # a Gallery hands the presigned URL to the browser
                        picture = gr.Gallery(label="Creative", columns=1, rows=1, height="auto", object_fit="contain",
                                             allow_preview=True)
                        copy_view = gr.Markdown()
                        with gr.Row():
                            approve_btn = gr.Button("Approve", variant="primary")
                            reason = gr.Textbox(label="Reason", placeholder="off brand", scale=2)
                            reject_btn = gr.Button("Reject", variant="stop")
                        with gr.Accordion("Edit copy", open=False):
                            field = gr.Dropdown(label="Field", choices=[], allow_custom_value=True)
                            index = gr.Number(label="Which text (0 = first)", value=0, precision=0, minimum=0)
                            new_text = gr.Textbox(label="New text")
                            edit_btn = gr.Button("Save edit (re-render and re-check)")
                        with gr.Accordion("Alternatives: copies best-of-N did not choose", open=False):
                            alt_view = gr.Markdown()
                            alt_choice = gr.Dropdown(label="Alternative", choices=[], allow_custom_value=True)
                            swap_btn = gr.Button("Swap in (re-render and re-check)")
                        with gr.Accordion("Regenerate with a new seed", open=False):
                            new_seed = gr.Number(label="Seed (empty: random)", value=None, precision=0, minimum=0)
                            regen_btn = gr.Button("Regenerate this creative")
                        with gr.Accordion("Lineage and review history", open=False):
                            # JSON as text: the Gradio client reads any {"path": ...} inside gr.JSON as a file
                            lineage = gr.Code(label="Lineage", language="json", interactive=False)
                            history = gr.JSON(label="Decisions")
            results_tab(ctx, handler)
        ids = gr.State([])
        seen = gr.State(None)  # the creative shown and its version: what review actions say they act on
        timer = gr.Timer(POLL_SECONDS, active=False)

        # ----- events: every endpoint that takes an id is named, so it can be tested -----
        filters = [campaign, audience, placement_f, status, sort, min_score]
        gallery_out = [progress, pictures, ids, audience, placement_f, timer]
        detail_out = [picture, head, copy_view, lineage, history, field, badges, new_text, seen]

        app.load(handler(load), None, [who, brand, campaign], api_name="whoami")
        brand.change(handler(show_brand), brand, [voice, banned, colors, swatches, logo_now], api_name="brand_kit")
        save.click(handler(save_brand), [brand, voice, banned, colors, logo], [swatches, logo_now, logo],
                   api_name="save_brand")
        created = [campaign, tabs, timer]
        create_btn.click(handler(create), [brand, name, products, audiences, chosen, variants, seed, text_adapter,
                                           image_adapter, photos, copy_by], created, api_name="create_campaign")
        upload_btn.click(handler(upload), [brand, spec_file, photos], created, api_name="upload_spec")
        photos.change(handler(preview_photos), [photos, products], cutouts, api_name="preview_photos")
        for component in filters:
            component.change(handler(refresh), filters, gallery_out, api_name="campaign" if component is campaign else False)
        timer.tick(handler(refresh), filters, gallery_out, api_name=False, show_progress="hidden")
        pictures.select(select, ids, creative, api_name=False)
        creative.change(handler(detail), creative, detail_out, api_name="creative")
        creative.change(handler(show_alternatives), creative, [alt_choice, alt_view], api_name="alternatives")

        def then_refresh(event):
            return event.then(handler(refresh), filters, gallery_out, api_name=False, show_progress="hidden").then(
                handler(detail), creative, detail_out, api_name=False, show_progress="hidden")

        acted = [creative, seen]
        then_refresh(approve_btn.click(handler(do_approve), [creative, seen], acted, api_name="approve"))
        then_refresh(reject_btn.click(handler(do_reject), [creative, reason, seen], acted, api_name="reject"))
        then_refresh(edit_btn.click(handler(do_edit), [creative, field, index, new_text, seen], acted, api_name="edit"))
        swap_event = then_refresh(swap_btn.click(handler(do_swap), [creative, alt_choice, seen], acted, api_name="swap"))
        swap_event.then(handler(show_alternatives), creative, [alt_choice, alt_view], api_name=False, show_progress="hidden")
        then_refresh(regen_btn.click(handler(do_regenerate), [creative, new_seed, seen], timer, api_name="regenerate"))
        then_refresh(approve_all.click(handler(do_approve_all), campaign, campaign, api_name="approve_all"))
        export_btn.click(handler(do_export), campaign, bundle, api_name="export")
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Launch with the safe defaults: sign-in required (rate limited, hashed off the event loop),
    cross-site requests refused, sessions that expire, nothing served from disk but Gradio's own
    cache, the records and storage folders blocked outright, uploads capped."""
    app = build_app(settings)
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)

    sign_in = SignIn(Context(settings).db, SignInLimiter(settings.signin_attempts, settings.signin_window))
    guard = Middleware(Guard, sign_in=sign_in, idle=settings.session_idle, lifetime=settings.session_max,
                       origins=settings.ui_origins)
    app.launch(
        server_name=host, server_port=port, auth=sign_in.verify, auth_message="Sign in with your adgen account.",
        allowed_paths=[], blocked_paths=[str(settings.home), settings.storage], max_file_size=MAX_UPLOAD,
        footer_links=["api"], ssr_mode=False, mcp_server=False, enable_monitoring=False, show_error=False,
        theme=gr.themes.Default(primary_hue="orange", secondary_hue="stone"), css=CSS, quiet=True,
        app_kwargs={"middleware": [guard]},
    )
