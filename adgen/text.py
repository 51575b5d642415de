"""Ad copy from a causal LM: batched, seeded generation and the compliance loop around it.

`TextModel` wraps any Hugging Face causal LM (local folder or hub id) loaded with `from_pretrained`.
`write_copy` asks it for every text of every variant of a job in one batched call, then checks each
text against the placement's limits, editorial rules and the brand's banned terms; failures are
regenerated in further batched rounds within a fixed budget, then shortened at a word boundary, and
every such fix is recorded.
"""

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from adgen.compliance import check_text, near_duplicate, shorten, strip_invisible
from adgen.models import LoadedAdapters, folder_size
from adgen.platforms import Placement
from adgen.prompts import copy_messages, fill_slots
from adgen.spec import Audience, Brand, Product

MAX_ROUNDS = 4
# Brand adapters kept loaded on the resident base model; the least recently used one is evicted.
MAX_ADAPTERS = 8
# Low temperature keeps small models on the phrasing they know; raise it for large instruct models.
TEMPERATURE, TOP_P = 0.6, 0.9


def prompt_text(tokenizer, messages: list[dict]) -> str:
    """The exact text a model is prompted with: its chat template when it has one. Training on
    brand copy (finetune/) renders its rows through this same function.

    Some templates have no system turn (Gemma 2's raises "System role not supported"); for those the
    system message opens the first user turn, which is what Gemma 3's own template does with it."""
    if not tokenizer.chat_template:
        return "\n\n".join(m["content"] for m in messages) + "\n\n"
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except TemplateError:
        if messages[0]["role"] != "system" or len(messages) < 2:
            raise
    system, first, *rest = messages
    folded = [{**first, "content": f"{system['content']}\n\n{first['content']}"}, *rest]
    return tokenizer.apply_chat_template(folded, add_generation_prompt=True, tokenize=False)


class TextModel:
    """A causal LM and its tokenizer, loaded once and kept resident, with brand LoRA adapters
    loaded onto it by name: switching adapters never reloads the base model."""

    def __init__(self, path: str, device: torch.device, dtype: torch.dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.stops = stop_ids(self.tokenizer, self.model.generation_config)
        self.device = device
        self.adapters = LoadedAdapters(MAX_ADAPTERS)
        self.active: str | None = None
        self.model_seconds = 0.0  # time spent inside generate(), for the efficiency figure

    def use_adapter(self, name: str | None, path=None, ref: str = "") -> None:
        """Make `name` the active PEFT adapter (loading it from `path` the first time), or None for
        the bare base model. The first adapter wraps the base in a PeftModel; later ones are added
        to it by name, and the least recently used are deleted beyond MAX_ADAPTERS (or the byte cap
        ADGEN_ADAPTER_BYTES, see LoadedAdapters)."""
        size = None
        if name is not None and name not in self.adapters:
            from peft import PeftModel

            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(path), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
            self.model.eval()
            size = folder_size(path)
            for oldest in self.adapters.evict(size):
                self.model.set_adapter(name)  # peft refuses to delete the active adapter
                self.model.delete_adapter(oldest)
                del self.adapters[oldest]
        if name is not None:
            self.model.set_adapter(name)
            self.adapters.used(name, ref, size)
        self.active = name

    def _prompt(self, messages: list[dict]) -> str:
        return prompt_text(self.tokenizer, messages)

    @torch.inference_mode()
    def complete(
        self, batch: list[list[dict]], *, seed: int, max_new_tokens: int, temperature: float = TEMPERATURE,
        top_p: float = TOP_P,
    ) -> list[str]:
        """One batched, seeded sampling call; returns the first line of each answer.

        A job asks the same prompt many times (every headline of every variant and candidate), so each
        distinct prompt is read once: its key/value cache is computed for the distinct prompts only and
        then repeated to the rows that share it, and sampling starts from there."""
        prompts = [self._prompt(m) for m in batch]
        row_of = {p: i for i, p in enumerate(dict.fromkeys(prompts))}  # each distinct prompt's row
        distinct = list(row_of)
        enc = self.tokenizer(
            distinct, return_tensors="pt", padding=True, add_special_tokens=not self.tokenizer.chat_template
        ).to(self.device)
        rows = torch.tensor([row_of[p] for p in prompts], device=self.device)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        torch.manual_seed(seed)
        start = time.perf_counter()
        bare = self.active is None and self.adapters
        with self.model.disable_adapter() if bare else nullcontext():
            cache = self._prefill(ids, mask, rows) if len(distinct) < len(prompts) and ids.shape[1] > 1 else None
            out = self.model.generate(
                input_ids=ids[rows], attention_mask=mask[rows], cache=cache, do_sample=True,
                temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stops,
            )
        self.model_seconds += time.perf_counter() - start
        return [_first_line(a) for a in self.answers(out[:, ids.shape[1] :])]

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor):
        """The cache of every distinct prompt but its last token, repeated to the rows asking it;
        `generate` reads the last token itself and samples on from the cache. Positions count from
        each prompt's first real token, as `generate` counts them under left padding."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        self.model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                   cache=cache, use_cache=True, logits_to_keep=1)
        cache.reorder_cache(rows)
        return cache

    def answers(self, generated: torch.Tensor) -> list[str]:
        """Each row of generated ids decoded up to its first stop token: nothing a model writes after
        its end of turn (or the padding after it) reaches the copy."""
        texts = []
        for row in generated.tolist():
            end = next((i for i, t in enumerate(row) if t in self.stops), len(row))
            texts.append(self.tokenizer.decode(row[:end], skip_special_tokens=True))
        return texts


def stop_ids(tokenizer, generation_config) -> list[int]:
    """The tokens that end an answer: the model's own end-of-sequence ids (an instruct model lists its
    end-of-turn token there, e.g. Qwen2's <|im_end|>, Gemma's <end_of_turn>) and the tokenizer's."""
    ids = generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


_LABELS = {"headline", "short headline", "long headline", "description", "short description", "primary text", "text", "path"}


def _first_line(answer: str) -> str:
    """The answer's first line without a 'Headline:' label or quotes that chat models like to add."""
    line = next((ln for ln in answer.splitlines() if ln.strip()), "")
    head, sep, rest = line.partition(":")
    if sep and head.strip().lower() in _LABELS:
        line = rest
    return strip_invisible(line).strip().strip('"*“”').strip()


@dataclass
class Copy:
    """The texts of one creative plus what was done to make them compliant."""

    texts: dict[str, list[str]]
    fixes: list[dict] = field(default_factory=list)


def write_copy(
    model: TextModel, *, brand: Brand, product: Product, audience: Audience, placement: Placement,
    variants: int, seed: int, candidates: int = 1, only: set[str] | None = None,
) -> list[Copy]:
    """All copy for one job: `variants` creatives, each with every field its placement needs (or
    only the fields named in `only`).

    With `candidates` N above 1, N x `variants` copies are written in the same batched calls (for
    adgen.best_of.choose to pick from); a text then only has to differ from the other texts of its own
    copy, since choosing keeps the picked copies apart, unless its field is short of distinct texts
    for the variants (_repeats_to_rewrite)."""
    count = variants * candidates
    written = {name: f for name, f in placement.fields.items() if f.written and (only is None or name in only)}
    slots = [(v, name, k) for v in range(count) for name, f in written.items() for k in range(f.generate)]
    accepted: dict[tuple, str] = {}
    last: dict[tuple, tuple[str, list[str]]] = {}
    repeats: dict[tuple, str] = {}  # texts set aside to be written again (see _repeats_to_rewrite)
    fixes: list[dict] = []
    tries = dict.fromkeys(slots, 0)
    max_tokens = min(256, math.ceil(max(f.max for f in written.values()) / 2.5) + 12) if written else 0

    pending = list(slots)
    for round_ in range(MAX_ROUNDS):
        if not pending:
            break
        messages = [copy_messages(brand, product, audience, placement, written[name]) for _, name, _ in pending]
        answers = model.complete(messages, seed=seed + round_, max_new_tokens=max_tokens)
        still = []
        for slot, raw in zip(pending, answers, strict=True):
            v, name, _ = slot
            text = fill_slots(raw, product=product, brand=brand, audience=audience, variant=v)
            issues = check_text(text, written[name], placement, brand.banned_terms, brand.name,
                                language=audience.language, keep=(product.name,))
            twin = next((o for s, o in accepted.items()
                         if s[1] == name and (candidates == 1 or s[0] == v) and near_duplicate(text, o)), None)
            if twin is not None:
                issues.append(f"near-duplicate of {twin!r}")
            tries[slot] += 1
            if issues:
                last[slot] = (text, issues)
                still.append(slot)
            else:
                accepted[slot] = text
                if tries[slot] > 1:
                    fixes.append({"variant": v, "field": name, "action": "regenerated", "tries": tries[slot],
                                  "reason": "; ".join(last[slot][1])})
        if candidates > 1 and round_ < MAX_ROUNDS - 1:
            still += _repeats_to_rewrite(accepted, last, repeats, written, variants)
        pending = still

    for slot in pending:  # out of budget: shorten when length was the only problem, else drop the text
        v, name, _ = slot
        if slot in repeats:  # no other text came: the repeat stays, for best-of-N to deal as before
            accepted[slot] = repeats[slot]
            continue
        text, issues = last[slot]
        f = written[name]
        short = shorten(text, f.max, f.url_length) if all("limit" in i for i in issues) else None
        if short and not check_text(short, f, placement, brand.banned_terms, brand.name,
                                    language=audience.language, keep=(product.name,)):
            accepted[slot] = short
            fixes.append({"variant": v, "field": name, "action": "shortened", "from": text, "to": short,
                          "reason": "; ".join(issues)})
        else:
            fixes.append({"variant": v, "field": name, "action": "dropped", "text": text, "reason": "; ".join(issues)})

    copies = []
    for v in range(count):
        texts = {name: [accepted[(v, name, k)] for k in range(f.generate) if (v, name, k) in accepted]
                 for name, f in written.items()} | fixed_texts(placement, brand, seed, v % variants)
        copies.append(Copy({name: texts[name] for name in placement.fields if name in texts},
                           [x for x in fixes if x["variant"] == v]))
    return copies


def _repeats_to_rewrite(accepted: dict[tuple, str], last: dict, repeats: dict[tuple, str], written: dict,
                        variants: int) -> list[tuple]:
    """With best-of-N, a field's texts need only differ within each copy, but choosing deals each
    distinct text once. When a field has fewer distinct texts than its variants need for the least
    the platform accepts (a model that writes one text almost always), its word-for-word repeats are
    set aside and written again with the next round's seed. Returns those slots; `repeats` keeps each
    one's text, which stays if no other comes."""
    again = []
    for name, f in written.items():
        seen: set[str] = set()
        repeated = []
        for slot in sorted(s for s in accepted if s[1] == name):
            if accepted[slot] in seen:
                repeated.append(slot)
            else:
                seen.add(accepted[slot])
        needed = variants * f.count[0]
        if len(seen) < needed:
            for slot in repeated:
                text = accepted.pop(slot)
                repeats.setdefault(slot, text)
                last[slot] = (text, [f"repeats {text!r}: {len(seen)} distinct texts of the {needed} the variants need"])
                again.append(slot)
    return again


def fixed_texts(placement: Placement, brand: Brand, seed: int, variant: int) -> dict[str, list[str]]:
    """The fields no model writes: the brand name, and a call to action rotating with the variant."""
    texts: dict[str, list[str]] = {}
    for name, f in placement.fields.items():
        if f.from_ == "brand_name":
            texts[name] = [shorten(brand.name, f.max) or brand.name]
        elif f.choices:
            texts[name] = [placement.cta_choices[(seed + variant) % len(placement.cta_choices)]]
    return texts
