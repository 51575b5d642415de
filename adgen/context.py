"""What every step of the flow needs besides its own arguments: the settings, the records and the
storage, opened on first use so that validating input touches neither.

It also reads a recorded campaign's spec back, in one place: the stored spec carries the storage key
of the brand logo it was made with, of each product's cut-out photo with the inpainting model, and a
snapshot of the brand kit when the campaign was created, beside the fields the user wrote.
"""

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.orm import Session, sessionmaker

from adgen import records
from adgen.settings import Settings
from adgen.spec import CampaignSpec
from adgen.storage import Storage, open_storage

# What a stored spec carries beside the fields the user wrote: storage keys and resolved models.
STORED_KEYS = ("logo_key", "product_photos", "inpaint_model", "brand_kit")


@dataclass
class Context:
    """Settings, the records and the storage; both are opened on first use."""

    settings: Settings

    @cached_property
    def db(self) -> sessionmaker[Session]:
        return records.open_db(self.settings)

    @cached_property
    def storage(self) -> Storage:
        return open_storage(self.settings)


def campaign_spec(campaign: records.Campaign) -> CampaignSpec:
    """The spec a campaign was recorded with, as the user wrote it (without the stored keys), except
    that its brand's banned terms include the kit's as snapshotted at creation: a spec may add banned
    terms, never drop the brand's. Checks added since it was recorded (product URLs) are left to the
    commands that need them."""
    spec = CampaignSpec.model_validate({k: v for k, v in campaign.spec.items() if k not in STORED_KEYS},
                                       context={"stored": True})
    kit_terms = campaign.spec.get("brand_kit", {}).get("banned_terms", [])
    if missing := [t for t in kit_terms if t not in spec.brand.banned_terms]:
        spec.brand.banned_terms = [*spec.brand.banned_terms, *missing]
    return spec


def campaign_logo(campaign: records.Campaign, ctx: Context) -> tuple[str | None, bytes | None]:
    """The storage key and bytes of the logo a campaign was recorded with (None, None without one)."""
    key = campaign.spec.get("logo_key")
    return key, ctx.storage.get(key) if key else None


def campaign_product_photo(campaign: records.Campaign, product: str, ctx: Context) -> tuple[dict, dict, bytes] | None:
    """A product's stored cut-out as (what the campaign recorded of it, the inpainting model ref,
    the cut-out's RGBA PNG bytes), or None when the product has no photo."""
    photo = campaign.spec.get("product_photos", {}).get(product)
    if photo is None:
        return None
    return photo, campaign.spec["inpaint_model"], ctx.storage.get(photo["cutout_key"])
