"""The models this process holds: each loads once (in a worker, in the child after the fork) and
stays resident, and is switched to a campaign's brand adapter by name before each job.
"""

from typing import TYPE_CHECKING

from adgen.models import pick_device, pick_dtype

if TYPE_CHECKING:
    from adgen.context import Context
    from adgen.image import ImageModel
    from adgen.text import TextModel

_loaded: dict[tuple, object] = {}


def cached(key: tuple, load):
    """Load once per process and keep resident (workers call this in the child, never before fork)."""
    if key not in _loaded:
        _loaded[key] = load()
    return _loaded[key]


def loaded() -> dict[tuple, object]:
    """The models this process holds, by key ("text", path, "cpu"): for worker status and benchmarks."""
    return dict(_loaded)



def _activate(model, ref: dict, ctx: "Context"):
    """Switch the resident model to the campaign's adapter (or none). An adapter already loaded is
    switched to by name; a new one is fetched from storage into the local cache first, and loading
    it evicts the least recently used ones beyond the count and ADGEN_ADAPTER_BYTES caps."""
    from adgen.adapters import AdapterError, fetch

    model.adapters.max_bytes = ctx.settings.adapter_bytes
    adapter = ref.get("adapter")
    if adapter is None:
        model.use_adapter(None)
        return model
    if adapter["base"]["hash"] != ref["hash"]:
        raise AdapterError(f"{adapter['ref']} was trained on base hash {adapter['base']['hash']}, not {ref['hash']}")
    name = f"adapter_{adapter['hash']}"
    path = None if name in model.adapters else fetch(ctx.storage, adapter, ctx.settings.home / "cache" / "adapters")
    model.use_adapter(name, path, ref=adapter["ref"])
    return model


def text_model_for(ref: dict, ctx: "Context") -> "TextModel":
    """The resident text model for a campaign's model ref, with its adapter (if any) active. The
    in-process runner and the workers both go through here."""
    from adgen.text import TextModel

    device = pick_device(ctx.settings)
    model = cached(("text", ref["path"], str(device)), lambda: TextModel(ref["path"], device, pick_dtype(device)))
    return _activate(model, ref, ctx)


def image_model_for(ref: dict, ctx: "Context") -> "ImageModel":
    """The resident image pipeline for a campaign's model ref, with its adapter (if any) active."""
    from adgen.image import ImageModel

    device = pick_device(ctx.settings)
    model = cached(("image", ref["path"], str(device)), lambda: ImageModel(ref["path"], device, pick_dtype(device)))
    return _activate(model, ref, ctx)


class InpaintModel:
    """A resident inpainting pipeline (`pipe`, for adgen.scene), with the time spent in it and no
    brand adapters, as the worker status reports every resident model."""

    def __init__(self, pipe):
        self.pipe, self.adapters, self.model_seconds = pipe, {}, 0.0


def inpaint_model_for(ref: dict, ctx: "Context") -> InpaintModel:
    """The resident inpainting pipeline for a campaign's models.inpaint ref, which paints the scene
    around a product photo (adgen.scene)."""
    from adgen.scene import load_inpainting

    device = pick_device(ctx.settings)
    return cached(("inpaint", ref["path"], str(device)),
                  lambda: InpaintModel(load_inpainting(ref["path"], device, pick_dtype(device))))
