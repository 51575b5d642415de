"""The placement registry carries the published numbers, each with its source."""

from adgen.platforms import registry


def test_every_placement_has_a_source_and_sane_fields():
    reg = registry()
    assert {"google_rsa", "google_pmax", "meta_feed", "meta_story", "linkedin_single_image", "x_promoted"} <= set(reg.placements)
    assert {"display_300x250", "display_728x90", "display_160x600", "display_300x600", "display_970x90"} <= set(reg.placements)
    for p in reg.placements.values():
        assert p.source.startswith("https://"), p.name
        for f in p.fields.values():
            lo, hi = f.count
            assert 0 <= lo <= hi
            if f.written:
                assert lo <= f.generate <= hi or (lo == 0 and f.generate == 1), (p.name, f.name)


def test_published_limits():
    reg = registry().placements
    rsa = reg["google_rsa"].fields
    assert (rsa["headline"].max, rsa["headline"].count) == (30, (3, 15))
    assert (rsa["description"].max, rsa["description"].count) == (90, (2, 4))
    assert rsa["path1"].max == rsa["path2"].max == 15
    assert reg["google_pmax"].fields["headline"].at_least_one_max == 15
    assert reg["google_pmax"].fields["description"].at_least_one_max == 60
    assert reg["meta_feed"].fields["primary_text"].max == 125
    assert reg["linkedin_single_image"].fields["intro_text"].hard_max == 600
    assert reg["x_promoted"].fields["post_text"].url_length == 23
    story = reg["meta_story"].image
    assert (story.width, story.height, story.safe_top, story.safe_bottom) == (1080, 1920, 0.14, 0.20)
    assert "Learn More" in reg["linkedin_single_image"].cta_choices


def test_every_field_has_a_role_and_every_pictured_placement_a_headline():
    for p in registry().placements.values():
        roles = [f.role for f in p.fields.values()]
        assert all(f.role == "cta" for f in p.fields.values() if f.choices), p.name
        assert all(f.role == "business_name" for f in p.fields.values() if f.from_), p.name
        if p.image:
            assert "headline" in roles, p.name
    x = registry().placements["x_promoted"]
    assert x.first_text("headline", {"post_text": ["Post"], "card_title": ["Card"]}) == "Card"
    assert x.first_text("cta", {"card_title": ["Card"]}) == ""
