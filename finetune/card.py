"""What travels with an adapter besides its weights: a model card (README.md) a person can read,
and the check that an adapter made elsewhere really loads onto the base model it claims."""

import json
from datetime import UTC, datetime
from pathlib import Path

from adgen.adapters import AdapterError

USAGE = {
    "text": """```python
from peft import PeftModel
from transformers import AutoModelForCausalLM
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base}"), "path/to/this/folder")
```""",
    "image": """```python
from diffusers import AutoPipelineForText2Image
pipe = AutoPipelineForText2Image.from_pretrained("{base}")
pipe.load_lora_weights("path/to/this/folder")
```""",
}


def write_card(folder: Path, *, brand: str, kind: str, base: dict, dataset: dict, hyperparameters: dict, metrics: dict) -> None:
    lines = [
        f"# {brand} {kind} adapter", "",
        f"A LoRA adapter with the brand's {'copy voice' if kind == 'text' else 'visual style'}, trained by "
        f"`adgen finetune {kind}` on {datetime.now(UTC):%Y-%m-%d}.", "",
        f"- base model: `{base['ref']}` (content hash `{base['hash']}`); it loads onto this model only",
        f"- data: {dataset.get('size')} examples from `{dataset.get('source')}` (sha256 `{dataset.get('hash')}`)",
        f"- format: {'PEFT (adapter_config.json + adapter_model.safetensors)' if kind == 'text' else 'diffusers LoRA (pytorch_lora_weights.safetensors)'}",
        "",
        "## Results", "",
    ]
    if "held_out_before" in metrics:  # preference tuning (DPO)
        b, a = metrics["held_out_before"], metrics["held_out_after"]
        lines += [
            f"Preference-tuned with TRL's DPOTrainer (beta {hyperparameters['beta']}) on chosen/rejected copy pairs "
            f"({dataset.get('source')}), on {'`' + dataset['on'] + '`' if dataset.get('on') else 'the base model'}.", "",
            "| held-out pairs | preference accuracy | reward margin | KL to reference per token |", "|---|---|---|---|",
            f"| reference | {b['preference_accuracy']:.0%} | {b['reward_margin']} | 0 |",
            f"| tuned | {a['preference_accuracy']:.0%} | {a['reward_margin']} | {a['kl_per_token']} |", "",
            f"{metrics['held_out_pairs']} held-out pairs; accuracy: the chosen text has the higher log-probability "
            f"per token. {metrics['steps']} steps in {metrics['seconds']} s. The pairs are in the run folder's pairs.jsonl.",
        ]
    elif kind == "text":
        b, a = metrics["validation_before"], metrics["validation_after"]
        lines += [
            "| | validation loss | perplexity |", "|---|---|---|",
            f"| base model | {b['loss']} | {b['perplexity']} |", f"| with adapter | {a['loss']} | {a['perplexity']} |", "",
            f"{metrics['validation_examples']} held-out examples ({a['tokens']} answer tokens); "
            f"{metrics['steps']} steps in {metrics['seconds']} s on {metrics['processes']} process(es).",
        ]
    else:
        lines += [f"Noise-prediction loss {metrics['first_loss']} -> {metrics['final_loss']} over {metrics['steps']} "
                  f"steps ({metrics['seconds']} s, {metrics['processes']} process(es)); validation images every few "
                  "steps in `validation.png`."]
    lines += ["", "![loss curve](loss.png)", ""]
    if kind == "image":
        lines += ["![validation images](validation.png)", ""]
    lines += ["## Use", "", USAGE[kind].format(base=base["ref"]), "", "## Hyperparameters", "", "```json",
              json.dumps(hyperparameters, indent=2), "```", ""]
    (folder / "README.md").write_text("\n".join(lines))


def check_loads(folder: Path, kind: str, base) -> None:
    """Load the adapter onto its base with stock peft / diffusers; raise AdapterError naming the
    folder when it does not fit (wrong base, wrong format)."""
    import torch

    from adgen.adapters import adapter_files

    adapter_files(folder, kind)
    try:
        if kind == "text":
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base.path), str(folder))
        else:
            from diffusers import AutoPipelineForText2Image

            pipe = AutoPipelineForText2Image.from_pretrained(base.path, dtype=torch.float32)
            pipe.load_lora_weights(str(folder), adapter_name="check")
            if not pipe.get_list_adapters():
                raise ValueError("no layer of the pipeline took a LoRA weight")
    except (ValueError, RuntimeError, KeyError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AdapterError(f"{folder} does not load onto base model {base.ref!r}: {first[:300]}") from None
