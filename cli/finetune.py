"""`adgen finetune` and `adgen adapters`: train brand adapters and manage the registry.

Registered on the `adgen` command in cli/main.py; `python -m finetune ...` (and so
`accelerate launch -m finetune ...`) runs the same `finetune` commands. Bad input ends with one line
naming the file, line, field or ref and exit status 2, and no adapter version is written.
"""

import functools
import json
import shutil
import tempfile
from pathlib import Path

import typer

from cli.console import console, context, out, print_table, progress, quiet_model_loading, user_errors

finetune_app = typer.Typer(help="Train brand LoRA adapters (text and image) into the adapter registry.",
                           no_args_is_help=True)
adapters_app = typer.Typer(help="The adapter registry: list, show, promote and add brand adapters.", no_args_is_help=True)


def finetune_errors(fn):
    """The library's input errors (data, recipes, adapters, specs, models) -> one line, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from adgen.adapters import AdapterError
        from finetune.config import RecipeError
        from finetune.data import DataError

        try:
            return fn(*args, **kwargs)
        except (DataError, RecipeError, AdapterError) as e:
            console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return user_errors(wrapper)


def _base(ref: str, kind: str, settings):
    from adgen.models import ModelError, resolve_model

    try:
        return resolve_model(ref, kind, settings)
    except ModelError as e:
        raise ModelError(str(e).replace(f"models.{kind}", "--base", 1)) from None


def _train_with_bar(train, label: str, steps_hint: int):
    """Run a trainer with a progress bar (step, loss) on the main process."""
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return train(None)
    with progress() as bar:
        task = bar.add_task(label, total=steps_hint)

        def on_step(step: int, total: int, loss: float):
            bar.update(task, completed=step, total=total, description=f"{label} (loss {loss:.3f})")

        metrics = train(on_step)
    if metrics.get("precision_note"):
        console.print(f"[yellow]note[/yellow] {metrics['precision_note']}", highlight=False, soft_wrap=True)
    return metrics


def _register(ctx, adapter_dir: Path, *, brand: str, kind: str, base, dataset: dict, config, metrics: dict,
              promote: bool, work: Path) -> None:
    """Write the model card, push the version to the registry and drop the run's checkpoints."""
    import dataclasses

    from accelerate import PartialState

    from adgen.adapters import push
    from finetune.card import write_card

    if not PartialState().is_main_process:
        return
    hyper = dataclasses.asdict(config)
    write_card(adapter_dir, brand=brand, kind=kind, base={"ref": base.ref, "hash": base.hash}, dataset=dataset,
               hyperparameters=hyper, metrics=metrics)
    version = push(ctx.storage, adapter_dir, brand=brand, kind=kind, base={"ref": base.ref, "hash": base.hash},
                   dataset=dataset, hyperparameters=hyper, metrics=metrics, promote=promote)
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    console.print(f"adapter files, loss curve and model card: {adapter_dir}")
    out.print(version.ref)


@finetune_app.command("text")
@finetune_errors
def finetune_text(
    brand: str = typer.Option(..., help="Registry brand slug, e.g. northwind."),
    data: Path = typer.Option(None, help="Copy JSONL (see README: 'text' rows and product/audience/placement/copy rows)."),
    from_reviews: bool = typer.Option(False, "--from-reviews", help="Train on the brand's approved creatives (reviewer edits included)."),
    campaign: list[str] = typer.Option(None, help="With --from-reviews: only these campaigns (repeatable)."),
    base: str = typer.Option(None, help="Base model: 'default', a folder or a hub id (default: the recipe's)."),
    config: Path = typer.Option(None, help="Recipe YAML (finetune/recipes/); default: default-text.yaml."),
    work: Path = typer.Option(None, "--out", help="Run folder for checkpoints and the adapter (default: $ADGEN_HOME/finetune/BRAND-text)."),
    resume: bool = typer.Option(False, help="Continue from the latest checkpoint in the run folder."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed rows (each is reported) instead of stopping."),
    promote: bool = typer.Option(True, help="Point BRAND/text@latest at the new version."),
    preference: bool = typer.Option(False, "--preference", help="Preference tuning (DPO) on chosen/rejected pairs from "
                                    "--from-results and/or --from-reviews, on the brand's current text adapter."),
    from_results: list[str] = typer.Option(None, "--from-results", help="With --preference: a campaign whose imported "
                                           "results give pairs (repeatable)."),
):
    """Train a brand text LoRA (transformers + peft + accelerate) and register it as BRAND/text@vN;
    with --preference, tune it toward what won with TRL's DPOTrainer."""
    from adgen.adapters import check_brand
    from finetune.checkpoints import refuse_unfinished
    from finetune.config import TextConfig, load_recipe
    from finetune.data import DataError, read_text_data
    from finetune.text import train_text

    check_brand(brand)
    ctx = context()
    if preference or from_results:
        if not preference:
            raise DataError("--from-results goes with --preference")
        if data or campaign or skip_bad:
            raise DataError("--preference takes its pairs from --from-results and --from-reviews, not --data, --campaign or --skip-bad")
        return _preference(ctx, brand, from_results or [], from_reviews, base, config, work, resume, promote)
    recipe, recipe_base = load_recipe(config, TextConfig, "text")
    if bool(data) == from_reviews:
        raise DataError("give --data FILE or --from-reviews")
    if campaign and not from_reviews:
        raise DataError("--campaign goes with --from-reviews")
    base_ref = _base(base or recipe_base, "text", ctx.settings)
    work = work or ctx.settings.home / "finetune" / f"{brand}-text"
    refuse_unfinished(work, resume)
    if from_reviews:
        from finetune.reviews import review_rows, write_jsonl

        data = work / "reviews.jsonl"
        rows = review_rows(ctx, brand, campaign or None)
        write_jsonl(rows, data)
        console.print(f"{sum(r['status'] == 'approved' for r in rows)} approved and "
                      f"{sum(r['status'] == 'rejected' for r in rows)} rejected creatives -> {data}")
    dataset = read_text_data(data, brand_name=brand, skip_bad=skip_bad)
    for line in dataset.skipped:
        console.print(f"[yellow]skipped[/yellow] {line}", highlight=False, soft_wrap=True)
    metrics = _train_with_bar(
        lambda progress: train_text(dataset, base_ref, recipe, work, resume=resume, progress=progress),
        f"text adapter {brand}", recipe.steps,
    )
    before, after = metrics["validation_before"], metrics["validation_after"]
    console.print(f"validation perplexity {before['perplexity']} -> {after['perplexity']} "
                  f"(loss {before['loss']} -> {after['loss']}, {metrics['validation_examples']} held-out examples)")
    _register(ctx, work / "adapter", brand=brand, kind="text", base=base_ref, config=recipe, metrics=metrics,
              dataset={"hash": dataset.hash, "size": len(dataset.examples), "negatives": dataset.negatives,
                       "source": "reviews" if from_reviews else str(data)},
              promote=promote, work=work)


def _preference(ctx, brand: str, from_results: list[str], from_reviews: bool, base: str | None, config: Path | None,
                work: Path | None, resume: bool, promote: bool) -> None:
    """Pairs from results and reviews -> the run folder's pairs.jsonl -> DPO -> BRAND/text@vN."""
    import hashlib

    from adgen.adapters import AdapterError, check_base, fetch, resolve
    from finetune.checkpoints import refuse_unfinished
    from finetune.config import PreferenceConfig, load_recipe
    from finetune.data import DataError
    from finetune.pairs import result_pairs, review_pairs, write_pairs
    from finetune.preference import train_preference

    if not from_results and not from_reviews:
        raise DataError("--preference: give --from-results CAMPAIGN (repeatable) and/or --from-reviews")
    recipe, recipe_base = load_recipe(config, PreferenceConfig, "preference")
    base_ref = _base(base or recipe_base, "text", ctx.settings)
    try:
        current = resolve(ctx.storage, f"{brand}/text@latest")
    except AdapterError:  # the brand has no text adapter yet: a new LoRA on the base
        current = None
    if current is not None:
        check_base(current, {"ref": base_ref.ref, "hash": base_ref.hash}, "--base")
    work = work or ctx.settings.home / "finetune" / f"{brand}-preference"
    refuse_unfinished(work, resume)
    pairs = result_pairs(ctx, brand, from_results) if from_results else []
    n_results = len(pairs)
    if from_reviews:
        pairs += review_pairs(ctx, brand)
    if not pairs:
        raise DataError("--preference: no pairs: no cell has a significantly better creative in the results, and no "
                        "reviewed cell has an approved and a rejected creative or an edit")
    path = work / "pairs.jsonl"
    write_pairs(pairs, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    console.print(f"{n_results} pairs from results and {len(pairs) - n_results} from reviews -> {path}")
    adapter = fetch(ctx.storage, current.lineage(), ctx.settings.home / "cache" / "adapters") if current else None
    quiet_model_loading()
    metrics = _train_with_bar(
        lambda progress: train_preference(pairs, brand, base_ref, adapter, recipe, work, resume=resume, progress=progress),
        f"preference tuning {brand}", recipe.steps,
    )
    b, a = metrics["held_out_before"], metrics["held_out_after"]
    console.print(f"held-out preference accuracy {b['preference_accuracy']:.0%} -> {a['preference_accuracy']:.0%}, "
                  f"reward margin {a['reward_margin']}, KL to the reference {a['kl_per_token']} per token "
                  f"({metrics['held_out_pairs']} held-out pairs)")
    sources = sorted({p["source"] for p in pairs})
    _register(ctx, work / "adapter", brand=brand, kind="text", base=base_ref, config=recipe, metrics=metrics,
              dataset={"hash": digest, "size": len(pairs), "source": "preference pairs: " + ", ".join(sources),
                       "method": "dpo", "on": current.ref if current else None,
                       "campaigns": sorted({s.split(":", 1)[1] for s in sources})},
              promote=promote, work=work)


@finetune_app.command("image")
@finetune_errors
def finetune_image(
    brand: str = typer.Option(..., help="Registry brand slug, e.g. northwind."),
    images: Path = typer.Option(..., help="Folder of images (PNG, JPEG, WebP, ...)."),
    captions: Path = typer.Option(None, help='JSONL of {"file", "caption"} rows; default: sidecar NAME.txt files.'),
    instance_token: str = typer.Option(None, help="A rare word put before every caption (DreamBooth style)."),
    base: str = typer.Option(None, help="Base pipeline: 'default', a folder or a hub id (default: the recipe's)."),
    config: Path = typer.Option(None, help="Recipe YAML (finetune/recipes/); default: default-image.yaml."),
    work: Path = typer.Option(None, "--out", help="Run folder (default: $ADGEN_HOME/finetune/BRAND-image)."),
    resume: bool = typer.Option(False, help="Continue from the latest checkpoint in the run folder."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip corrupt or too-small images (each is reported)."),
    promote: bool = typer.Option(True, help="Point BRAND/image@latest at the new version."),
):
    """Train a brand image LoRA (diffusers + peft + accelerate) and register it as BRAND/image@vN."""
    import dataclasses

    from adgen.adapters import check_brand
    from finetune.checkpoints import refuse_unfinished
    from finetune.config import ImageConfig, load_recipe
    from finetune.data import read_image_data
    from finetune.image import train_image

    check_brand(brand)
    ctx = context()
    recipe, recipe_base = load_recipe(config, ImageConfig, "image")
    if instance_token:
        recipe = dataclasses.replace(recipe, instance_token=instance_token)
    base_ref = _base(base or recipe_base, "image", ctx.settings)
    work = work or ctx.settings.home / "finetune" / f"{brand}-image"
    refuse_unfinished(work, resume)
    dataset = read_image_data(images, captions, recipe.min_side, skip_bad=skip_bad)
    for line in dataset.skipped:
        console.print(f"[yellow]skipped[/yellow] {line}", highlight=False, soft_wrap=True)
    quiet_model_loading()
    metrics = _train_with_bar(
        lambda progress: train_image(dataset, base_ref, recipe, work, resume=resume, progress=progress),
        f"image adapter {brand}", recipe.steps,
    )
    console.print(f"loss {metrics['first_loss']} -> {metrics['final_loss']}; validation grid: {work / 'adapter' / 'validation.png'}")
    _register(ctx, work / "adapter", brand=brand, kind="image", base=base_ref, config=recipe, metrics=metrics,
              dataset={"hash": dataset.hash, "size": len(dataset.examples), "source": str(images)},
              promote=promote, work=work)


@adapters_app.command("list")
@user_errors
def adapters_list(brand: str = typer.Option(None, help="Only this brand.")):
    """Every registered adapter version: ref, base model, dataset size, key metric, created."""
    from adgen.adapters import KINDS, brands, versions

    ctx = context()
    rows = [("ref", "latest", "base", "data", "metric", "created")]
    for name in [brand] if brand else brands(ctx.storage):
        for kind in KINDS:
            found, latest = versions(ctx.storage, name, kind)
            for v in found:
                after = v.metrics.get("validation_after", {}).get("perplexity")
                metric = f"ppl {v.metrics['validation_before']['perplexity']}->{after}" if after else (
                    f"loss {v.metrics['final_loss']}" if "final_loss" in v.metrics else "-")
                rows.append((v.ref, "*" if v.version == latest else "", f"{v.base['ref']} ({v.base['hash'][:8]})",
                             str(v.dataset.get("size", "-")), metric, v.created[:16].replace("T", " ")))
    print_table(rows)


@adapters_app.command("show")
@finetune_errors
def adapters_show(ref: str):
    """One version's metadata as JSON: base model and hash, dataset, hyperparameters, metrics, files."""
    import dataclasses

    from adgen.adapters import resolve

    version = resolve(context().storage, ref)
    out.print_json(json.dumps({"ref": version.ref, **dataclasses.asdict(version)}))


@adapters_app.command("promote")
@finetune_errors
def adapters_promote(ref: str):
    """Point BRAND/KIND@latest at the version REF names (roll forward or back)."""
    from adgen.adapters import promote

    version = promote(context().storage, ref)
    out.print(f"{version.brand}/{version.kind}@latest -> v{version.version}")


@adapters_app.command("add")
@finetune_errors
def adapters_add(
    path: Path = typer.Argument(..., help="A PEFT adapter folder (text), or a diffusers LoRA folder or .safetensors file (image, kohya too)."),
    brand: str = typer.Option(..., help="Registry brand slug."),
    kind: str = typer.Option(..., help="text or image."),
    base: str = typer.Option("default", help="The base model it was trained on; it is loaded onto it to check."),
    promote: bool = typer.Option(True, help="Point BRAND/KIND@latest at it."),
):
    """Register an adapter trained elsewhere, after checking that it loads onto its base model."""
    from adgen.adapters import AdapterError, push
    from finetune.card import check_loads

    if kind not in ("text", "image"):
        raise AdapterError(f"--kind {kind!r}: use text or image")
    ctx = context()
    base_ref = _base(base, kind, ctx.settings)
    quiet_model_loading()
    with tempfile.TemporaryDirectory() as tmp:
        folder = path
        if kind == "image" and path.is_file():  # a single LoRA file, diffusers or kohya naming
            folder = Path(tmp)
            shutil.copy(path, folder / "pytorch_lora_weights.safetensors")
        check_loads(folder, kind, base_ref)
        version = push(ctx.storage, folder, brand=brand, kind=kind, base={"ref": base_ref.ref, "hash": base_ref.hash},
                       dataset={"source": str(path)}, source="adgen adapters add", promote=promote)
    out.print(version.ref)
