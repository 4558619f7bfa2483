"""The chosen models' spaces embedded, once the work's estimated time and how each model reads the sentences pass."""
from __future__ import annotations

import functools

import torch

from core.bench import machine
from core.bench.plan import ENCODER_EFFICIENCY, encoder_flops
from core.compare import embed
from core.compare.sentences import SentenceSet
from core.formatting import format_seconds
from core.models.student import dims as model_dims
from core.models.student import num_layers
from ui.context import AppContext
from ui.embed_inputs import ModelChoice, model_layer

EMBED_BATCH = 32  # sentences a forward pass, as core.compare.embed.all_layers embeds them
MAPS_NEED = "The maps need"  # how Draw's and Neighbours' refusals of too few sentences begin
LAYERS_NEED = "Layer similarity needs"  # and Layer similarity's, which draws no map


def embedding_seconds(loaded, sentences: SentenceSet, pooling: str) -> tuple[float, int]:
    """(estimated seconds, tokens) of embedding `sentences` with `loaded`: the encoder's FLOPs over batches of
    EMBED_BATCH sentences of similar length, at this machine's measured float32 rate, sentences read as the same
    tokens counted once, as they are embedded (core.compare.embed.token_lengths); (0, tokens) when cached."""
    lengths = sorted(embed.token_lengths(loaded, sentences))
    if embed.is_embedded(loaded, sentences, pooling):
        return 0.0, sum(lengths)
    batches = [lengths[i:i + EMBED_BATCH] for i in range(0, len(lengths), EMBED_BATCH)]
    try:
        shape, layers = model_dims(loaded.model.config), num_layers(loaded.model.config)
        flops = sum(len(b) * encoder_flops(layers, shape["hidden"], shape["ffn"], max(b)) for b in batches)
    except AttributeError:  # not a BERT-like config: two FLOPs a parameter a token
        params = sum(p.numel() for p in loaded.model.base_model.parameters())
        flops = sum(2 * params * len(b) * max(b) for b in batches)
    rate = machine.quick_rate(torch.float32, "cpu") * ENCODER_EFFICIENCY["cpu", "reference"]
    return flops / rate, sum(lengths)


def check_models_and_sentences(ctx: AppContext, models: list, sentences: SentenceSet, pooling: str,
                               needs: str = MAPS_NEED) -> None:
    """Before any embedding: ValueError when it would take too long (check_embedding_work), or when a model reads
    the sentences as fewer different token sequences than a map or CKA needs (core.compare.embed.check_readable,
    its refusal begun by `needs`: MAPS_NEED or LAYERS_NEED). A set of too few different sentences is refused before
    any model is loaded (core.compare.embed.check_map_sentences)."""
    check_embedding_work(ctx, models, sentences, pooling)
    for loaded in models:
        embed.check_readable(loaded, sentences, needs)


def check_embedding_work(ctx: AppContext, models: list, sentences: SentenceSet, pooling: str) -> None:
    """Refuse, before any embedding runs, a request whose estimated time is over ctx.max_embed_s; ValueError saying
    the sentences, their tokens, the estimate and the limit."""
    estimates = [embedding_seconds(m, sentences, pooling) for m in models]
    seconds = sum(s for s, _ in estimates)
    if seconds > ctx.max_embed_s:
        tokens = max(t for _, t in estimates)
        raise ValueError(f"Embedding these {len(sentences):,} sentences ({tokens:,} tokens a model) with "
                         f"{len(models)} models would take about {format_seconds(seconds)} here, more than the "
                         f"{format_seconds(ctx.max_embed_s)} one request may take on this app; use fewer or shorter "
                         "sentences, or smaller models.")


def scaled_progress(progress, part: int, parts: int, done: float, desc: str) -> None:
    """Report a part's own fraction done as a fraction of the whole job."""
    progress((part + done) / parts, desc=desc)


def chosen_spaces(ctx: AppContext, sentences: SentenceSet, chosen: list[ModelChoice], pooling: str,
            progress) -> list[embed.Space]:
    """Each chosen model's space at its layer; the layers (model_layer), the time it would take and how each model
    reads the sentences (check_models_and_sentences) are checked before any embedding starts."""
    models = [ctx.load(choice.name, progress=progress) for choice in chosen]
    for loaded, choice in zip(models, chosen):
        model_layer(loaded, choice)
    check_models_and_sentences(ctx, models, sentences, pooling)
    spaces = []
    for i, (loaded, choice) in enumerate(zip(models, chosen)):
        step = functools.partial(scaled_progress, progress, i, len(chosen))
        spaces.append(embed.embed_space(loaded, sentences, choice.layer, pooling, progress=step))
    return spaces
