"""Tiny real models of each family a user is told to use, built the way diffusers' and transformers'
own tests build them: the real classes, tiny configs, random weights, written with `save_pretrained`
so the product loads them through its own `from_pretrained` path (a spec's `models:` names the folder).

Text: Llama 3, Qwen2 and Gemma 2, each with its own byte-level BPE tokenizer trained here, its own
special tokens and a chat template in its family's format (Gemma 2's refuses a system turn, as the
real one does). Image: SD 1.5, SDXL (two CLIP text encoders, added time conditioning), SD3 (an
MMDiT transformer, three text encoders, flow matching) and an SDXL-Turbo-style few-step pipeline.
"""

from pathlib import Path

import torch

TEXTS = [
    "Cold Brew Concentrate: smooth, low-acid cold brew that makes 16 cups per bottle.",
    "Parents of young kids, short on time, who want good coffee without the fuss.",
    "Write one short headline, at most 27 characters. Reply with it only.",
    "A velvet roast in every sip. Slow steeped, ready in seconds.",
    "You write ads for Northwind Coffee. Voice: warm, witty, never pushy.",
]

# Each text family: its special tokens (pad, end of sequence, beginning, turn markers), the token that
# ends an assistant turn, and its chat template in the family's own format.
TEXT_FAMILIES = {
    "llama3": {
        "specials": {"pad_token": "<|finetune_right_pad_id|>", "eos_token": "<|eot_id|>", "bos_token": "<|begin_of_text|>"},
        "extra": ["<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>"],
        "end_of_turn": "<|eot_id|>",
        "template": (
            "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' "
            "+ m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
        ),
    },
    "qwen2": {
        "specials": {"pad_token": "<|endoftext|>", "eos_token": "<|im_end|>"},
        "extra": ["<|im_start|>"],
        "end_of_turn": "<|im_end|>",
        "template": (
            "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
        ),
    },
    "gemma2": {
        "specials": {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>"},
        "extra": ["<start_of_turn>", "<end_of_turn>"],
        "end_of_turn": "<end_of_turn>",
        "template": (
            "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
            "{% endif %}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
            "{{ '<start_of_turn>' + role + '\n' + m['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
        ),
    },
}


def _tokenizer(family: dict):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys([*family["specials"].values(), *family["extra"]]))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS * 4, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, padding_side="left", model_max_length=1024, **family["specials"])
    fast.chat_template = family["template"]
    return fast


def build_text_model(name: str, out: Path, says: str | None = None) -> Path:
    """A tiny model of text family `name` (a TEXT_FAMILIES key) saved with its tokenizer in `out`.
    Its generation config lists the end-of-turn token among the end-of-sequence ids, as instruct
    models on the hub do. With `says`, its weights are set so that it answers every prompt with that
    line, its end of turn, then another word (see `_say`); otherwise they stay random."""
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    family = TEXT_FAMILIES[name]
    tokenizer = _tokenizer(family)
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in family["specials"].items()}
    stops = list(dict.fromkeys([tokenizer.convert_tokens_to_ids(family["end_of_turn"]), ids["eos_token"]]))
    shape = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                 pad_token_id=ids["pad_token"], eos_token_id=stops, bos_token_id=ids.get("bos_token"))
    config_class, model_class = {"llama3": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
                                 "gemma2": (Gemma2Config, Gemma2ForCausalLM)}[name]
    extra = {"head_dim": 8, "sliding_window": 64, "final_logit_softcapping": None} if name == "gemma2" else {}
    torch.manual_seed(0)
    model = model_class(config_class(**shape, **extra, tie_word_embeddings=says is None and name == "qwen2"))
    if says is not None:
        _say(model, tokenizer, says + family["end_of_turn"] + " Next")
    model.generation_config = GenerationConfig(eos_token_id=stops, pad_token_id=ids["pad_token"],
                                               bos_token_id=ids.get("bos_token"))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@torch.no_grad()
def _say(model, tokenizer, text: str) -> None:
    """Make the model a chain of bigrams that writes `text` after any generation prompt: every layer's
    output projections are zeroed (the last hidden state is the current token's embedding), and the
    output row of each next token points at the current token's embedding. Sampling at any
    temperature the product uses then follows the chain."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True, tokenize=False)
    chain = [tokenizer(prompt, add_special_tokens=False)["input_ids"][-1], *tokenizer(text, add_special_tokens=False)["input_ids"]]
    assert len(set(chain)) == len(chain), f"a repeated token would make the chain loop: {tokenizer.convert_ids_to_tokens(chain)}"
    for name, param in model.named_parameters():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            param.zero_()
    embed, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    head.zero_()
    for current, following in zip(chain, chain[1:], strict=False):
        head[following] = 40 * embed[current] / embed[current].norm() / embed.shape[1] ** 0.5


def _clip_encoders(tokenizer, *, hidden: int, projection: int, count: int, with_projection: tuple[bool, ...]):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=77, projection_dim=projection,
                            bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_act="gelu")
    return [(CLIPTextModelWithProjection if with_projection[i] else CLIPTextModel)(config) for i in range(count)]


def _t5() -> dict:
    """A tiny T5 encoder and its unigram tokenizer (a piece per word of TEXTS, then single characters)."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    words = sorted({w for t in TEXTS for w in t.replace(",", " ").replace(".", " ").split()})
    vocab = ([("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("\u2581" + w, -1.0) for w in words]
             + [(c, -5.0) for c in sorted(set("".join(TEXTS)))])
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=37, d_kv=8, num_layers=1, num_heads=4,
                                      pad_token_id=0, eos_token_id=1))
    return {"text_encoder_3": encoder, "tokenizer_3": tokenizer}


def build_image_pipeline(name: str, out: Path) -> Path:
    """A tiny pipeline of image family `name` saved in the diffusers format in `out`: "sdxl"
    (StableDiffusionXLPipeline: two CLIP text encoders, text-and-time added conditioning),
    "sdxl-turbo" (the same classes with SDXL-Turbo's scheduler: Euler ancestral, trailing
    timesteps) or "sd3" (StableDiffusion3Pipeline: SD3Transformer2DModel, two CLIP encoders and a T5
    encoder with a unigram tokenizer made here, flow-matching scheduler). Configs follow diffusers' own pipeline tests."""
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    from adgen.build_defaults import _clip_tokenizer

    torch.manual_seed(0)
    tokenizer = _clip_tokenizer(TEXTS * 4)
    if name == "sd3":
        encoders = _clip_encoders(tokenizer, hidden=32, projection=32, count=2, with_projection=(True, True))
        pipe = StableDiffusion3Pipeline(
            transformer=SD3Transformer2DModel(
                sample_size=32, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
                caption_projection_dim=32, joint_attention_dim=32, pooled_projection_dim=64, out_channels=4),
            vae=AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                              latent_channels=4, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                              shift_factor=0.0609, scaling_factor=1.5035),
            scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=encoders[0], tokenizer=tokenizer,
            text_encoder_2=encoders[1], tokenizer_2=tokenizer, **_t5(),
        )
    else:
        encoders = _clip_encoders(tokenizer, hidden=32, projection=32, count=2, with_projection=(False, True))
        scheduler = (EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                     timestep_spacing="trailing") if name == "sdxl-turbo" else
                     EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                            steps_offset=1, timestep_spacing="leading"))
        pipe = StableDiffusionXLPipeline(
            unet=UNet2DConditionModel(
                block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
                addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
                projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64, norm_num_groups=1),
            vae=AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
                              down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                              sample_size=64, norm_num_groups=1),
            scheduler=scheduler, text_encoder=encoders[0], tokenizer=tokenizer, text_encoder_2=encoders[1],
            tokenizer_2=tokenizer, force_zeros_for_empty_prompt=name == "sdxl-turbo",
        )
    pipe.save_pretrained(out)
    return out
